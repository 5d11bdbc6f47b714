# $1 is 0 on removal, 1 on upgrade: only removal stops and disables the service.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop svr-etl.service || :
    fi
    systemctl disable svr-etl.service >/dev/null 2>&1 || :
fi
