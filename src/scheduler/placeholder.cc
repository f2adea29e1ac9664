// placeholder until the batcher lands
