// placeholder until the HTTP front end lands
