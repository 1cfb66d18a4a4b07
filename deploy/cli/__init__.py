"""The `eddyline` command line. app.py is the app and says which module holds each command;
options.py the option groups the job commands share, common.py the consoles, tables and the one
error printer; tables.py and top.py what people see of the jobs; demo.py is `make demo`."""
