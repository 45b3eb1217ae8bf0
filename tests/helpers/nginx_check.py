"""`nginx -t` on rendered configs inside one long-lived balancer container (the stand-in image,
i.e. Debian's nginx 1.22), with the replica names resolvable as they are on a real stack."""

from __future__ import annotations

import io
import tarfile
import time
import uuid

from scaleout.config.sections import MAX_REPLICAS
from scaleout.layout import LB_CONF_MOUNT


class NginxChecker:
    def __init__(self, client, image: str):
        self.client = client
        hosts = {f"backend-{i}": "127.0.0.1" for i in range(1, MAX_REPLICAS + 1)}
        self.container = client.containers.run(
            image, ["sleep", "3600"], detach=True, remove=True, extra_hosts=hosts,
            name=f"scaleout-nginx-check-{uuid.uuid4().hex[:8]}", labels={"io.scaleout.test": "nginx-check"},
        )
        code, out = self.container.exec_run(["mkdir", "-p", LB_CONF_MOUNT, "/srv/public", "/srv/scaleout-sw"])
        # every check depends on these folders: a failure here must say so, not show up as nginx -t failing
        assert code == 0, f"preparing the nginx check container failed ({code}): {out.decode(errors='replace')}"

    def check(self, text: str) -> tuple[bool, str]:
        """(passed, nginx's output) for one nginx.conf text."""
        name = f"t{uuid.uuid4().hex[:8]}.conf"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
        self.container.put_archive(LB_CONF_MOUNT, buf.getvalue())
        code, out = self.container.exec_run(["nginx", "-t", "-c", f"{LB_CONF_MOUNT}/{name}"])
        self.container.exec_run(["rm", "-f", f"{LB_CONF_MOUNT}/{name}"])
        return code == 0, out.decode(errors="replace")

    def close(self) -> None:
        try:
            self.container.remove(force=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
