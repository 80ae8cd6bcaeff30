-- gradlab.progress — gl.progress(i, n [, {loss = v}]): a progress bar with the
-- step, rate, ETA and last loss on stderr when it is a terminal; a plain line
-- every few seconds (and at the end) when it is not, so logs stay readable.
return function(gl)
  local state = { started = nil, last_print = 0, total = nil }
  local interactive = gl._isatty(2)

  local function duration(seconds)
    if seconds ~= seconds or seconds == math.huge then return "?" end
    seconds = math.floor(seconds + 0.5)
    if seconds >= 3600 then return ("%dh%02dm"):format(seconds // 3600, seconds % 3600 // 60) end
    if seconds >= 60 then return ("%dm%02ds"):format(seconds // 60, seconds % 60) end
    return ("%ds"):format(seconds)
  end

  return function(i, n, extra)
    if type(i) ~= "number" or type(n) ~= "number" or n <= 0 then
      error("progress: bad arguments (step i and total n > 0 expected)", 2)
    end
    local now = gl.clock()
    if not state.started or i <= 1 or state.total ~= n then
      state.started, state.last_print, state.total = now, now, n
    end
    local elapsed = now - state.started
    local rate = elapsed > 0 and (i - 1) / elapsed or 0
    local eta = rate > 0 and (n - i) / rate or math.huge
    local loss = extra and extra.loss
    if gl.is_tensor(loss) then loss = loss:item() end
    local tail = ("%d/%d  %.1f it/s  eta %s%s"):format(i, n, rate, duration(eta),
      loss and ("  loss %.4g"):format(loss) or "")
    if interactive then
      local width = 30
      local filled = math.floor(width * i / n + 0.5)
      io.stderr:write(("\r[%s%s] %s\27[K"):format(("#"):rep(filled), ("."):rep(width - filled), tail))
      if i >= n then io.stderr:write("\n") end
    elseif i >= n or now - state.last_print >= 5 then
      io.stderr:write(tail, "\n")
      state.last_print = now
    end
  end
end
