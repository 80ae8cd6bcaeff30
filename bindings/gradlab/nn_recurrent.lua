-- gradlab.nn_recurrent — RNN, LSTM, GRU modules (to be written).
return function(gl, nn)
end
