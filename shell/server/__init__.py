"""The one model of the Jobmon 3.6 server, and the drivers that decide what happens next."""
