// placeholder until the gRPC front end lands
