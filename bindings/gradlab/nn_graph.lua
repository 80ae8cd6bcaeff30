-- gradlab.nn_graph — GraphConv modules (to be written).
return function(gl, nn)
end
