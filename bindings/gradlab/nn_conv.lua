-- gradlab.nn_conv — Conv2d, MaxPool2d, AvgPool2d modules (to be written).
return function(gl, nn)
end
