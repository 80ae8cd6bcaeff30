-- gradlab: the Lua face of the engine.  `local gl = require "gradlab"`.
--
-- The C core (gradlab.core) provides tensors and their ops; this file gathers
-- them into one table and adds the pieces written in Lua.
local core = require "gradlab.core"

local gl = {}
for name, fn in pairs(core) do gl[name] = fn end

gl.version = "0.1.0"

-- Functional forms of the unary tensor methods: gl.exp(t) == t:exp().
for _, name in ipairs { "exp", "log", "sqrt", "abs", "neg", "sign", "clamp", "pow",
                        "sum", "mean", "max", "min", "argmax", "argmin", "norm",
                        "half", "bfloat16", "transpose", "reshape", "view" } do
  gl[name] = gl[name] or function(t, ...) return t[name](t, ...) end
end

gl.gradcheck = require("gradlab.gradcheck")(gl)
gl.init = require("gradlab.initializers")(gl)
gl.nn = require("gradlab.nn")(gl)
require("gradlab.nn_norm")(gl, gl.nn)
require("gradlab.nn_conv")(gl, gl.nn)
require("gradlab.nn_recurrent")(gl, gl.nn)
require("gradlab.nn_attention")(gl, gl.nn)
require("gradlab.nn_graph")(gl, gl.nn)
gl.optim = require("gradlab.optim")(gl)
gl.amp = require("gradlab.amp")(gl)
gl.Monitor = require("gradlab.monitor")(gl)
gl.data = require("gradlab.data")(gl)
gl.progress = require("gradlab.progress")(gl)
gl.experiment = require("gradlab.experiment")(gl)

return gl
