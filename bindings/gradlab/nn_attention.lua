-- gradlab.nn_attention — Embedding, MultiheadAttention, TransformerBlock modules (to be written).
return function(gl, nn)
end
