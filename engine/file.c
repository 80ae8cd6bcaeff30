/* file.c — whole-file reads and atomic writes, shared by the .npy and .npz code.
 *
 * Messages from these two functions carry no op name ("cannot write 'w.npy':
 * Permission denied"): their callers (save, save_state, load, load_state)
 * prepend their own, so the user sees the function they called. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "gradlab.h"

/* Writes all `size` bytes, retrying short writes and EINTR. */
static int write_all(int fd, const unsigned char *bytes, size_t size)
{
    while (size > 0) {
        /* Chunks of at most 1 GiB: some kernels refuse larger single writes. */
        size_t chunk = size < ((size_t)1 << 30) ? size : ((size_t)1 << 30);
        ssize_t n = write(fd, bytes, chunk);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        bytes += n;
        size -= (size_t)n;
    }
    return 0;
}

/* The mode a freshly created file would get from open(path, O_CREAT, 0666):
 * mkstemp makes its file 0600, which would leave saved weights unreadable by
 * anyone else.  POSIX offers no way to read the umask without setting it. */
static mode_t default_file_mode(void)
{
    mode_t mask = umask(022);
    umask(mask);
    return 0666 & ~mask;
}

/* Makes the rename durable: after a crash the directory entry points at either
 * the old or the new file.  Failure here does not undo the save, so it is
 * deliberately ignored (some filesystems refuse fsync on directories). */
static void sync_directory(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

gl_status gl_file_write_atomic(const char *path, const void *bytes, size_t size,
                               gl_error *err)
{
    static const char temp_name[] = ".gradlab-tmp-XXXXXX";
    if (!path || !*path) return gl_error_set(err, GL_EARG, 1, "cannot write '': empty path");

    /* The temp file lives in the target's folder so that rename() stays on one
     * filesystem and is atomic.  A fixed short temp name (rather than
     * "<path>.XXXXXX") cannot exceed NAME_MAX when the target name is long. */
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *temp = malloc(dir_len + sizeof temp_name + 1);
    char *dir = malloc(dir_len + 2);
    if (!temp || !dir) {
        free(temp);
        free(dir);
        return gl_error_set(err, GL_ENOMEM, 1, "cannot write '%s': out of memory", path);
    }
    memcpy(temp, path, dir_len);
    memcpy(temp + dir_len, temp_name, sizeof temp_name);
    if (dir_len) {
        memcpy(dir, path, dir_len);
        dir[dir_len] = '\0';
    } else {
        strcpy(dir, ".");
    }

    int saved_errno = 0;
    int fd = mkstemp(temp);
    if (fd < 0) {
        saved_errno = errno;
        goto fail_no_temp;
    }

    /* Keep an existing file's permissions; otherwise behave like open(O_CREAT). */
    struct stat st;
    mode_t mode = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? st.st_mode & 07777
                                                               : default_file_mode();
    if (fchmod(fd, mode) != 0 || write_all(fd, bytes, size) != 0 || fsync(fd) != 0) {
        saved_errno = errno;
        close(fd);
        goto fail;
    }
    if (close(fd) != 0) {
        saved_errno = errno;
        goto fail;
    }
    if (rename(temp, path) != 0) {
        saved_errno = errno;
        goto fail;
    }
    sync_directory(dir);
    free(temp);
    free(dir);
    return GL_OK;

fail:
    unlink(temp);
fail_no_temp:
    free(temp);
    free(dir);
    return gl_error_set(err, GL_EIO, 1, "cannot write '%s': %s", path, strerror(saved_errno));
}

gl_status gl_file_read_all(const char *path, unsigned char **bytes, size_t *size,
                           gl_error *err)
{
    *bytes = NULL;
    *size = 0;
    if (!path || !*path) return gl_error_set(err, GL_EARG, 1, "cannot read '': empty path");

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return gl_error_set(err, GL_EIO, 1, "cannot read '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gl_error_set(err, GL_EIO, 1, "cannot read '%s': %s", path, strerror(e));
    }
    /* open() succeeds on a directory; say so instead of failing later in read(). */
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return gl_error_set(err, GL_EIO, 1, "cannot read '%s': %s", path, strerror(EISDIR));
    }

    /* Regular files are read in one allocation; pipes and devices grow a buffer. */
    size_t capacity = 65536;
    if (S_ISREG(st.st_mode)) {
        if ((uint64_t)st.st_size >= (uint64_t)SIZE_MAX) {
            close(fd);
            return gl_error_set(err, GL_ENOMEM, 1, "cannot read '%s': file too large", path);
        }
        capacity = (size_t)st.st_size + 1;
    }
    unsigned char *buffer = malloc(capacity);
    size_t used = 0;
    if (!buffer) goto no_memory;
    for (;;) {
        if (used == capacity) {
            if (capacity > SIZE_MAX / 2) goto no_memory_free;
            unsigned char *grown = realloc(buffer, capacity * 2);
            if (!grown) goto no_memory_free;
            buffer = grown;
            capacity *= 2;
        }
        ssize_t n = read(fd, buffer + used, capacity - used);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(buffer);
            close(fd);
            return gl_error_set(err, GL_EIO, 1, "cannot read '%s': %s", path, strerror(e));
        }
        if (n == 0) break;
        used += (size_t)n;
    }
    close(fd);
    *bytes = buffer;
    *size = used;
    return GL_OK;

no_memory_free:
    free(buffer);
no_memory:
    close(fd);
    return gl_error_set(err, GL_ENOMEM, 1, "cannot read '%s': out of memory", path);
}
