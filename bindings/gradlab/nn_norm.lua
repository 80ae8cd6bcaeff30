-- gradlab.nn_norm — the normalization modules, added to gl.nn:
--
--   nn.BatchNorm(features [, {momentum = 0.1, eps = 1e-5, affine = true, track_running_stats = true}])
--       (B, F), (B, C, L) or (B, C, H, W): one mean/variance per feature or channel over the
--       batch (and positions); running_mean/running_var buffers (and num_batches_tracked, as
--       PyTorch's state dict has it) used in evaluate mode.
--   nn.LayerNorm(normalized_shape [, {eps = 1e-5, elementwise_affine = true, bias = true}])
--   nn.GroupNorm(groups, channels [, {eps = 1e-5, affine = true}])
--   nn.InstanceNorm(channels [, {eps = 1e-5, affine = false}])   (group norm with groups = channels;
--       no running statistics, as PyTorch's default InstanceNorm2d)
--   nn.RMSNorm(normalized_shape [, {eps = float32 epsilon, elementwise_affine = true}])
--
-- normalized_shape is a number or a shape table such as {C, H, W}.  The kernels are in C
-- (engine/norm_batch.c, engine/norm_group.c) behind gl.batch_norm, gl.layer_norm,
-- gl.group_norm and gl.rms_norm; this file holds parameters, buffers and checks.
-- Parameter and buffer names are PyTorch's: weight, bias, running_mean, running_var.
return function(gl, nn)
  local class = nn.class
  local check = require "gradlab.nn_check"
  local shape_text, integer_check, options_check = check.shape_text, check.integer, check.options
  local FLOAT32_EPSILON = 2 ^ -23   -- torch.finfo(torch.float32).eps, RMSNorm's default


  local function eps_check(layer, eps)
    if type(eps) ~= "number" or not (eps > 0) or eps == math.huge then
      error(("%s: eps must be a positive number, got %s"):format(layer, tostring(eps)), 4)
    end
    return eps
  end

  local function flag(value, default) if value == nil then return default end return value and true or false end

  -- A number or a shape table → a new shape table of positive integers.
  local function normalized_shape_check(layer, value)
    local shape = type(value) == "table" and value or { value }
    if #shape == 0 then
      error(("%s: bad argument #1 (normalized_shape must be a size or a shape table, got %s)")
        :format(layer, tostring(value)), 4)
    end
    local out = {}
    for i, size in ipairs(shape) do out[i] = integer_check(layer, 1, size, "normalized_shape") end
    return out
  end

  -- The channels (dimension 2) of x against what the module was built for.  Level 4 of
  -- these forward checks: helper → forward → Module.__call → the caller.
  local function channels_check(self, x, layer)
    if x:dim() < 2 then
      error(("%s: input must be (B, C) or (B, C, ...) with channels on dimension 2, got shape %s")
        :format(layer, shape_text(x:shape())), 4)
    end
    local channels = x:size(2)
    if channels ~= self.num_features then
      error(("%s: input shape %s has %d channels on dimension 2, the module expects %d (parameter shape {%d})")
        :format(layer, shape_text(x:shape()), channels, self.num_features, self.num_features), 4)
    end
  end

  -- BatchNorm ---------------------------------------------------------------
  local BatchNorm = class("BatchNorm")
  local batch_norm_options = { momentum = true, eps = true, affine = true, track_running_stats = true }
  function BatchNorm:init(features, options)
    features = integer_check("BatchNorm", 1, features, "features")
    options = options_check("BatchNorm", 2, options, batch_norm_options)
    local momentum = options.momentum == nil and 0.1 or options.momentum
    if type(momentum) ~= "number" or not (momentum >= 0 and momentum <= 1) then
      error(("BatchNorm: momentum must be a number in [0, 1], got %s"):format(tostring(momentum)), 3)
    end
    self.num_features, self.momentum = features, momentum
    self.eps = eps_check("BatchNorm", options.eps == nil and 1e-5 or options.eps)
    self.affine = flag(options.affine, true)
    self.track_running_stats = flag(options.track_running_stats, true)
    if self.affine then
      self:register_parameter("weight", gl.ones{ features })
      self:register_parameter("bias", gl.zeros{ features })
    end
    if self.track_running_stats then
      self:register_buffer("running_mean", gl.zeros{ features })
      self:register_buffer("running_var", gl.ones{ features })
      self:register_buffer("num_batches_tracked", gl.tensor(0))
    end
  end

  function BatchNorm:forward(x)
    channels_check(self, x, "BatchNorm")
    -- Without running statistics, evaluate mode keeps using the batch's (as PyTorch).
    local training = self.training or not self.track_running_stats
    local y = gl.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training,
                            self.momentum, self.eps)
    if self.training and self.track_running_stats then self.num_batches_tracked:add_(1) end
    return y
  end

  -- Restores running_mean = 0, running_var = 1 (and the count), as PyTorch's reset_running_stats.
  function BatchNorm:reset_running_stats()
    if self.track_running_stats then
      self.running_mean:zero()
      self.running_var:fill(1)
      self.num_batches_tracked:zero()
    end
    return self
  end

  function BatchNorm:extra_repr()
    local text = ("%d, eps=%g, momentum=%g, affine=%s"):format(self.num_features, self.eps, self.momentum,
                                                              tostring(self.affine))
    if not self.track_running_stats then text = text .. ", track_running_stats=false" end
    return text
  end

  -- LayerNorm ---------------------------------------------------------------
  local LayerNorm = class("LayerNorm")
  local layer_norm_options = { eps = true, elementwise_affine = true, bias = true }
  function LayerNorm:init(normalized_shape, options)
    self.normalized_shape = normalized_shape_check("LayerNorm", normalized_shape)
    options = options_check("LayerNorm", 2, options, layer_norm_options)
    self.eps = eps_check("LayerNorm", options.eps == nil and 1e-5 or options.eps)
    self.elementwise_affine = flag(options.elementwise_affine, true)
    if self.elementwise_affine then
      self:register_parameter("weight", gl.ones(self.normalized_shape))
      if flag(options.bias, true) then self:register_parameter("bias", gl.zeros(self.normalized_shape)) end
    end
  end

  -- The trailing dims of x against normalized_shape, named by the module.
  local function trailing_check(self, x, layer)
    local shape, n, k = x:shape(), x:dim(), #self.normalized_shape
    local fits = n >= k
    for i = 1, k do fits = fits and shape[n - k + i] == self.normalized_shape[i] end
    if not fits then
      error(("%s: input shape %s does not end with normalized_shape %s")
        :format(layer, shape_text(shape), shape_text(self.normalized_shape)), 4)
    end
  end

  function LayerNorm:forward(x)
    trailing_check(self, x, "LayerNorm")
    return gl.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
  end

  function LayerNorm:extra_repr()
    local text = ("%s, eps=%g, elementwise_affine=%s"):format(shape_text(self.normalized_shape), self.eps,
                                                             tostring(self.elementwise_affine))
    if self.elementwise_affine and not self.bias then text = text .. ", bias=false" end
    return text
  end

  -- GroupNorm ---------------------------------------------------------------
  local GroupNorm = class("GroupNorm")
  local group_norm_options = { eps = true, affine = true }
  function GroupNorm:init(groups, channels, options)
    groups = integer_check("GroupNorm", 1, groups, "groups")
    channels = integer_check("GroupNorm", 2, channels, "channels")
    if channels % groups ~= 0 then
      error(("GroupNorm: %d groups do not divide %d channels"):format(groups, channels), 3)
    end
    options = options_check("GroupNorm", 3, options, group_norm_options)
    self.num_groups, self.num_channels, self.num_features = groups, channels, channels
    self.eps = eps_check("GroupNorm", options.eps == nil and 1e-5 or options.eps)
    self.affine = flag(options.affine, true)
    if self.affine then
      self:register_parameter("weight", gl.ones{ channels })
      self:register_parameter("bias", gl.zeros{ channels })
    end
  end

  function GroupNorm:forward(x)
    channels_check(self, x, "GroupNorm")
    return gl.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
  end

  function GroupNorm:extra_repr()
    return ("%d, %d, eps=%g, affine=%s"):format(self.num_groups, self.num_channels, self.eps, tostring(self.affine))
  end

  -- InstanceNorm: each (sample, channel) normalized over its positions ----------
  local InstanceNorm = class("InstanceNorm")
  function InstanceNorm:init(channels, options)
    channels = integer_check("InstanceNorm", 1, channels, "channels")
    options = options_check("InstanceNorm", 2, options, group_norm_options)
    self.num_features = channels
    self.eps = eps_check("InstanceNorm", options.eps == nil and 1e-5 or options.eps)
    self.affine = flag(options.affine, false)
    if self.affine then
      self:register_parameter("weight", gl.ones{ channels })
      self:register_parameter("bias", gl.zeros{ channels })
    end
  end

  function InstanceNorm:forward(x)
    channels_check(self, x, "InstanceNorm")
    if x:dim() < 3 then
      error(("InstanceNorm: input must be (B, C, L) or (B, C, H, W), got shape %s"):format(shape_text(x:shape())), 3)
    end
    return gl.group_norm(x, self.num_features, self.weight, self.bias, self.eps)
  end

  function InstanceNorm:extra_repr()
    return ("%d, eps=%g, affine=%s"):format(self.num_features, self.eps, tostring(self.affine))
  end

  -- RMSNorm -----------------------------------------------------------------
  local RMSNorm = class("RMSNorm")
  local rms_norm_options = { eps = true, elementwise_affine = true }
  function RMSNorm:init(normalized_shape, options)
    self.normalized_shape = normalized_shape_check("RMSNorm", normalized_shape)
    options = options_check("RMSNorm", 2, options, rms_norm_options)
    self.eps = eps_check("RMSNorm", options.eps == nil and FLOAT32_EPSILON or options.eps)
    self.elementwise_affine = flag(options.elementwise_affine, true)
    if self.elementwise_affine then self:register_parameter("weight", gl.ones(self.normalized_shape)) end
  end

  function RMSNorm:forward(x)
    trailing_check(self, x, "RMSNorm")
    return gl.rms_norm(x, self.normalized_shape, self.weight, self.eps)
  end

  function RMSNorm:extra_repr()
    return ("%s, eps=%g, elementwise_affine=%s"):format(shape_text(self.normalized_shape), self.eps,
                                                       tostring(self.elementwise_affine))
  end

  return nn
end
