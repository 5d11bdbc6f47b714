# Makes systemd see the unit; the service is not enabled or started: it needs a bucket
# in /etc/svr-etl/svr-etl.toml first.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
