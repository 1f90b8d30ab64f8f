#!/usr/bin/env python3
"""The Python half of tools/demo.sh: what is easier said with boto3, zipfile and urllib than in
bash. Run with the project's venv Python, inside the demo's AWS environment (the emulator's
endpoint and dummy credentials, exported by tools/demo.sh).

    demo_lib.py environments DIR              environments/ copied to DIR with the demo's short bakes
    demo_lib.py zip BINARY OUT_ZIP            OUT_ZIP holding BINARY as `bootstrap`
    demo_lib.py stamp ZIP                     the build stamp inside ZIP's bootstrap
    demo_lib.py checkpoint NAME LOG           every function's aliases, one JSON line appended to LOG
    demo_lib.py wait-served GATEWAY STAGE     until the gateway serves every function's alias version
    demo_lib.py request METHOD URL [BODY]     one request, printed as the curl line demo.sh shows would
    demo_lib.py traffic GATEWAY STAGE OUT [N] requests to every function until SIGTERM (or N each)
    demo_lib.py tally OUT                     the counts `traffic` wrote
    demo_lib.py splits STAGE                  "FUNCTION VERSION WEIGHT" per function with a split on STAGE
    demo_lib.py objects GATEWAY STAGE         notes, images and file-metadata on STAGE, shown as curl lines
    demo_lib.py bucket STAGE PURPOSE          the name of STAGE's bucket of PURPOSE (its stage variable)
    demo_lib.py png OUT                       the demo's 300x150 PNG, written to OUT
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The user every stage's birthday table gets in the demo, and the date it stores.
USER = "ada"
BIRTHDAY = '{"dateOfBirth":"1990-07-05"}'


def project() -> dict:
    envs = os.environ.get("PROMOTE_ENVIRONMENTS") or str(ROOT / "environments")
    return json.loads((pathlib.Path(envs) / "project.json").read_text())


def functions() -> list[str]:
    return [f["name"] for f in project()["functions"]]


def lam():
    import boto3
    return boto3.client("lambda")


def environments(out: str) -> None:
    """environments/ with 2 s bakes and 1 s polls, so that the walk takes about a minute.
    Bakes that short end before any real alarm window could: the copy says so with the
    override the environments check requires (test_fixture_short_bakes), never set in
    environments/."""
    dst = pathlib.Path(out)
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted((ROOT / "environments").glob("*.json")):
        d = json.loads(f.read_text())
        if f.name != "project.json":
            d["poll_interval_seconds"] = 1
            d["test_fixture_short_bakes"] = True
            # moto runs no Lambda code and serves no percentiles: the demo's canaries are judged
            # by the alarms the gateway evaluates (promote/tests/it_judge.rs shows the metrics judge).
            d["analysis"] = {"sources": ["alarms"]}
            # The gateway runs debug builds on this machine, beside whatever else it runs (make
            # test runs the integration tests alongside): a new version's cold starts there
            # took p99 past 1.5 s and rolled a good release back. The demo's faults are errors;
            # its latency alarm stays, evaluated, with a threshold a laptop meets.
            for alarm in d.get("alarms", []):
                if alarm["kind"] == "api_p99_latency":
                    alarm["threshold"] = max(alarm["threshold"], 10_000)
            s = d["strategy"]
            if s["type"] == "canary":
                for step in s["steps"]:
                    step["bake_seconds"] = 2
            else:
                s["bake_seconds"] = 1
        (dst / f.name).write_text(json.dumps(d, indent=2) + "\n")
    schema = ROOT / "environments/schema"
    if schema.is_dir():
        (dst / "schema").mkdir(exist_ok=True)
        for f in schema.iterdir():
            (dst / "schema" / f.name).write_bytes(f.read_bytes())


def make_zip(binary: str, out: str) -> None:
    """BINARY as `bootstrap`, without its symbol tables where `strip` is installed (as the
    release profile's `strip = "symbols"` ships it; the build stamp is data, not a symbol) and
    deflated at level 1: a debug binary shrinks to a fifth in half a second, and promote's
    upload of it (hashed and encoded by a debug build) takes a fifth as long."""
    tmp = out + ".tmp"
    stripped = tmp + ".bin"
    if shutil.which("strip"):
        subprocess.run(["strip", "-o", stripped, binary], check=True)
        binary = stripped
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        info = zipfile.ZipInfo("bootstrap", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(binary, "rb") as f:
            z.writestr(info, f.read(), compresslevel=1)
    if binary == stripped:
        os.remove(stripped)
    os.replace(tmp, out)


def stamp(path: str) -> str:
    data = zipfile.ZipFile(path).read("bootstrap")
    m = re.search(rb"@@build-stamp@@(.*?)@@end@@", data)
    return m.group(1).decode() if m else "no build stamp"


def aliases(function: str) -> dict:
    out = {}
    for a in lam().list_aliases(FunctionName=function)["Aliases"]:
        weights = ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights")) or {}
        out[a["Name"]] = {"version": a["FunctionVersion"], "weights": weights, "description": a.get("Description", "")}
    return out


def checkpoint(name: str, log: str) -> None:
    """Every function's aliases as the emulator holds them, read independently of promote."""
    entry = {"checkpoint": name, "functions": {f: aliases(f) for f in functions()}}
    with open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def splits(stage: str) -> None:
    client = lam()
    for function in functions():
        a = client.get_alias(FunctionName=function, Name=stage)
        for version, weight in ((a.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}).items():
            print(function, version, weight)


def stage_variables(stage: str) -> dict[str, str]:
    """The API stage's variables, which name the stage's buckets (docs/storage.md)."""
    import boto3
    api = boto3.client("apigateway")
    name = project()["rest_api_name"]
    api_id = next(a["id"] for a in api.get_rest_apis()["items"] if a["name"] == name)
    return api.get_stage(restApiId=api_id, stageName=stage).get("variables", {})


def senders(gateway: str, stage: str) -> dict[str, object]:
    """Per function, what one request of the demo's traffic is: its probe from project.json
    (method, path, body, content type), answered with (status, version). A function S3 events
    trigger gets an upload to the stage's trigger bucket instead, answered by its summary
    (200 and the version the summary names, or 504 when none appears in time)."""
    import base64
    out = {}
    variables = None
    for f in project()["functions"]:
        p = f["probe"]
        if p.get("type") == "upload":
            if variables is None:
                variables = stage_variables(stage)
            out[f["name"]] = upload_sender(variables[f"{p['bucket']}Bucket"], variables[f"{p['summaries']}Bucket"],
                                           p["prefix"], p.get("deadline_seconds", 10))
            continue
        body = p.get("body", "").encode() if "body" in p else (
            base64.b64decode(p["body_base64"]) if "body_base64" in p else None)
        url = f"{gateway}/{stage}{p['path']}"

        def send(method=p["method"], url=url, body=body, ctype=p.get("content_type")):
            status, version, _ = call(method, url, body, content_type=ctype)
            return status, version
        out[f["name"]] = send
    return out


def upload_sender(bucket: str, summaries: str, prefix: str, deadline: float):
    import boto3
    import uuid
    s3 = boto3.client("s3")

    def send():
        key = f"{prefix}demo-{uuid.uuid4().hex[:12]}"
        s3.put_object(Bucket=bucket, Key=key, Body=b"demo upload\n", ContentType="text/plain")
        until = time.time() + deadline
        while time.time() < until:
            try:
                summary = json.loads(s3.get_object(Bucket=summaries, Key=f"{key}.json")["Body"].read())
                return 200, str(summary.get("made_by", {}).get("version", ""))
            except s3.exceptions.NoSuchKey:
                time.sleep(0.05)
        return 504, ""
    send.upload = True
    return send


def call(method: str, url: str, body: str | bytes | None = None, timeout: float = 5,
         content_type: str | None = "application/json") -> tuple[int, str, str]:
    """(status, x-app-version or "", body) of one request."""
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("x-app-version", ""), r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("x-app-version", ""), e.read().decode(errors="replace")


def wait_served(gateway: str, stage: str) -> None:
    """The gateway re-reads the aliases every 250 ms: wait (at most 5 s) until every function
    answers from the version its alias names now. The birthday table gets its demo user first,
    so that a GET of it answers 200."""
    call("PUT", f"{gateway}/{stage}/hello/{USER}", BIRTHDAY)
    want = {f: lam().get_alias(FunctionName=f, Name=stage)["FunctionVersion"] for f in functions()}
    deadline = time.time() + 5
    pending = senders(gateway, stage)
    while pending and time.time() < deadline:
        for f, send in list(pending.items()):
            try:
                if send()[1] == want[f]:
                    del pending[f]
            except OSError:
                pass
        time.sleep(0.05)


def demo_png(width: int = 300, height: int = 150) -> bytes:
    """A PNG of WIDTHxHEIGHT (a colour gradient), written with zlib alone: the demo's image."""
    import struct
    import zlib
    rows = b"".join(b"\x00" + bytes(c for x in range(width) for c in ((x * 255) // width, (y * 255) // height, 128))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 6)) + chunk(b"IEND", b""))


def png_size(data: bytes) -> tuple[int, int]:
    import struct
    return struct.unpack(">II", data[16:24]) if data[:8] == b"\x89PNG\r\n\x1a\n" else (0, 0)


def multipart(fields: dict[str, str], file: tuple[str, str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body of FIELDS and one FILE (field, filename, bytes), as curl -F sends it."""
    boundary = "demo-boundary-7d1f"
    out = b""
    for k, v in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    name, filename, data = file
    out += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def fetch(method: str, url: str, body: bytes | None = None, content_type: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    if content_type:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def wait_summary(summaries: str, key: str, deadline: float = 15) -> dict | None:
    import boto3
    s3 = boto3.client("s3")
    until = time.time() + deadline
    while time.time() < until:
        try:
            return json.loads(s3.get_object(Bucket=summaries, Key=f"{key}.json")["Body"].read())
        except s3.exceptions.NoSuchKey:
            time.sleep(0.1)
    return None


def objects(gateway: str, stage: str) -> None:
    """The object functions of STAGE as curl would show them: a note written and read, an image
    and its 75-pixel copy, an upload to the stage's uploads bucket and file-metadata's summary of
    it. Each answer names the version that made it."""
    import boto3
    names = {f["name"] for f in project()["functions"]}
    variables = stage_variables(stage)
    if "notes" in names:
        url = f"{gateway}/{stage}/notes/shopping"
        print(f"$ curl -s -X PUT -H 'Content-Type: text/plain' --data-binary 'remember the milk' {url}")
        status, headers, body = fetch("PUT", url, b"remember the milk", "text/plain")
        print(f"{status} {body.decode()} x-app-version: {headers.get('x-app-version', '')}")
        print(f"$ curl -s {url}")
        status, headers, body = fetch("GET", url)
        print(f"{status} {body.decode().strip()} x-app-version: {headers.get('x-app-version', '')}")
    if "images" in names:
        png = demo_png()
        path = ROOT / "target/demo/demo.png"
        path.write_bytes(png)
        url = f"{gateway}/{stage}/images"
        print(f"$ curl -s -F file=@{path.relative_to(ROOT)} -F s3Key=photos/demo.png {url}    # a 300x150 PNG")
        body, ctype = multipart({"s3Key": "photos/demo.png"}, ("file", "demo.png", png))
        status, headers, out = fetch("POST", url, body, ctype)
        print(f"{status} {out.decode()} x-app-version: {headers.get('x-app-version', '')}")
        copy = f"{url}/photos/demo.png_75"
        print(f"$ curl -s -o target/demo/demo_75.png {copy}")
        status, headers, out = fetch("GET", copy)
        w, h = png_size(out)
        print(f"{status} {headers.get('Content-Type', '')} {w}x{h} x-app-version: {headers.get('x-app-version', '')}")
    if "file-metadata" in names:
        endpoint = os.environ["AWS_ENDPOINT_URL"]
        uploads, summaries = variables["uploadsBucket"], variables["summariesBucket"]
        key = f"demo/hello-{int(time.time() * 1000)}.txt"
        sign = '--aws-sigv4 "aws:amz:$AWS_REGION:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY"'
        print(f"$ curl -s {sign} -X PUT -H 'Content-Type: text/plain' --data-binary 'hello' {endpoint}/{uploads}/{key}")
        boto3.client("s3").put_object(Bucket=uploads, Key=key, Body=b"hello", ContentType="text/plain")
        print(f"$ curl -s {sign} {endpoint}/{summaries}/{key}.json    # written by file-metadata on {stage}")
        summary = wait_summary(summaries, key)
        if summary is None:
            print("no summary within 15 s")
        else:
            made = summary.get("made_by", {})
            print(f"{summary.get('size')} bytes {summary.get('content_type')} summarised by {made.get('function')} "
                  f"x-app-version: {made.get('version')}")


def request(method: str, url: str, body: str | None = None) -> None:
    """What `curl -s [-X PUT -d BODY] -w '...'` prints in demo.sh, for a machine without curl."""
    status, version, text = call(method, url, body)
    if method == "PUT":
        print(f"{status} x-app-version: {version}")
    else:
        print(f"{text} x-app-version: {version}")


def traffic(gateway: str, stage: str, out: str, limit: int) -> None:
    """Every function's probe request (or upload) in turn until SIGTERM, or N each (then from 4
    clients at once); tallied by function, status and the version that answered (x-app-version,
    or the summary's; a crash's 502 names none)."""
    tally: collections.Counter = collections.Counter()
    lock = threading.Lock()

    def dump(*_):
        with lock:
            counts = {" ".join(k): v for k, v in sorted(tally.items())}
        with open(out, "w") as f:
            json.dump(counts, f)
        os._exit(0)

    signal.signal(signal.SIGTERM, dump)
    targets = senders(gateway, stage)

    def one(f, send):
        try:
            status, version = send()
        except OSError:
            status, version = 0, ""
        with lock:
            tally[(f, str(status), f"version {version}" if version else "error")] += 1

    # An upload waits for its summary for up to a second, and must not slow the requests to the
    # others (the alarms count those).
    if limit:
        with concurrent.futures.ThreadPoolExecutor(4 * len(targets)) as pool:
            list(pool.map(lambda job: one(*job), [(f, send) for _ in range(limit) for f, send in targets.items()]))
    else:
        # The requests in turn on one thread, as many as before there were uploads; the uploads
        # on one of their own, waiting for their summaries.
        def loop(jobs):
            while True:
                for f, send in jobs:
                    one(f, send)
                time.sleep(0.02)
        uploads = [(f, send) for f, send in targets.items() if getattr(send, "upload", False)]
        requests = [(f, send) for f, send in targets.items() if not getattr(send, "upload", False)]
        for jobs in (requests, uploads):
            if jobs:
                threading.Thread(target=loop, args=(jobs,), daemon=True).start()
        while True:
            time.sleep(1)
    dump()


def watch_alarms(stage: str, out: str, limit: float = 120) -> None:
    """Polls STAGE's alarms every 100 ms until one is in ALARM, and writes those lines to OUT.
    Started before the bad canary: with the gateway's scaled periods an alarm can fire and
    clear again within two seconds of the rollback, before a check started afterwards looks."""
    import boto3
    cw = boto3.client("cloudwatch")
    deadline = time.time() + limit
    while time.time() < deadline:
        firing = [f"{a['AlarmName']} ALARM {a['StateReason'][:120]}"
                  for a in cw.describe_alarms(AlarmNamePrefix=f"app-{stage}-")["MetricAlarms"]
                  if a["StateValue"] == "ALARM"]
        if firing:
            pathlib.Path(out).write_text("\n".join(firing) + "\n")
            return
        time.sleep(0.1)


def show_tally(path: str) -> None:
    t = json.load(open(path))
    per_function = collections.Counter()
    for k, v in t.items():
        per_function[k.split()[0]] += v
    for k, v in sorted(t.items()):
        print(f"  {k:<30} {v:>5}  ({100 * v / per_function[k.split()[0]]:.1f}% of {k.split()[0]})")


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "environments":
        environments(*args)
    elif cmd == "zip":
        make_zip(*args)
    elif cmd == "stamp":
        print(stamp(*args))
    elif cmd == "checkpoint":
        checkpoint(*args)
    elif cmd == "wait-served":
        wait_served(*args)
    elif cmd == "request":
        request(*args)
    elif cmd == "traffic":
        traffic(args[0], args[1], args[2], int(args[3]) if len(args) > 3 else 0)
    elif cmd == "watch-alarms":
        watch_alarms(*args)
    elif cmd == "objects":
        objects(*args)
    elif cmd == "bucket":
        print(stage_variables(args[0])[f"{args[1]}Bucket"])
    elif cmd == "png":
        pathlib.Path(args[0]).write_bytes(demo_png())
    elif cmd == "tally":
        show_tally(*args)
    elif cmd == "splits":
        splits(*args)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
