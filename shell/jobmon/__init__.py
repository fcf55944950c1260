"""Working beside Jobmon's own processes: its distributor, its resume sequence."""
