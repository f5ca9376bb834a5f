"""Workflow-shaped run of kerchunk-nos against moto, driven by the manifest.

Run by tests/dead_letter_test.sh (which starts moto and sets AWS_*). Reads
deploy/argo/workflowtemplate-extract-single.yaml and plays Argo's part for
one workflow: substitute {{workflow.parameters.*}}, run the entrypoint
container (retrying while retryStrategy.expression holds, up to its limit;
backoff waits are skipped, timing is not what is tested), set
{{workflow.status}}, then run the onExit steps whose `when` holds. Only the
subset of Argo the manifest uses is understood; anything else is an error,
so a manifest change this emulation cannot follow fails the test instead of
being ignored.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

import boto3
import yaml

PASSED = []
FAILED = []


def check(ok, what):
    (PASSED if ok else FAILED).append(what)
    print(("PASS " if ok else "FAIL ") + what, flush=True)
    return ok


def substitute(s, params, status=None):
    def repl(m):
        name = m.group(1).strip()
        if name == "workflow.status":
            if status is None:
                raise SystemExit(f"{{{{workflow.status}}}} used outside the exit handler: {s!r}")
            return status
        if name.startswith("workflow.parameters."):
            key = name[len("workflow.parameters."):]
            if params.get(key) is None:
                raise SystemExit(f"parameter {key!r} has no value in {s!r}")
            return params[key]
        raise SystemExit(f"unsupported Argo variable {{{{{name}}}}} in {s!r}")

    return re.sub(r"\{\{([^}]*)\}\}", repl, s)


# `lastRetry.exitCode == "3" || ... || lastRetry.message matches "RE"`
TERM = re.compile(r'^lastRetry\.(exitCode|status) == "([^"]*)"$|^lastRetry\.message matches "([^"]*)"$')


def retry_expression(expr, exit_code, status, message):
    result = False
    for term in expr.split("||"):
        m = TERM.match(term.strip())
        if not m:
            raise SystemExit(f"retry expression term not understood: {term.strip()!r}")
        if m.group(1) == "exitCode":
            result |= str(exit_code) == m.group(2)
        elif m.group(1) == "status":
            result |= status == m.group(2)
        else:
            result |= re.search(m.group(3), message) is not None
    return result


def when_holds(expr):
    m = re.fullmatch(r"\s*(\w+)\s*(==|!=)\s*(\w+)\s*", expr)
    if not m:
        raise SystemExit(f"`when` not understood: {expr!r}")
    return (m.group(1) == m.group(3)) == (m.group(2) == "==")


class Workflow:
    def __init__(self, wt, bin_path, overrides):
        self.wt = wt
        self.bin = bin_path
        self.templates = {t["name"]: t for t in wt["spec"]["templates"]}
        self.params = {p["name"]: p.get("value") for p in wt["spec"]["arguments"]["parameters"]}
        for k, v in overrides.items():
            if k not in self.params:
                raise SystemExit(f"{k!r} is not a parameter of the WorkflowTemplate")
            self.params[k] = v
        self.runs = []  # (template name, args, exit code)

    def run_container(self, name, status=None):
        c = self.templates[name]["container"]
        command = c["command"]
        if command != ["/kerchunk-nos"]:
            raise SystemExit(f"{name}: unexpected command {command!r}")
        args = [substitute(str(a), self.params, status) for a in c["args"]]
        env = {e["name"]: substitute(e["value"], self.params, status) for e in c.get("env", [])}
        # The manifest's env, plus the test's moto endpoint and credentials.
        full_env = dict(os.environ)
        full_env.update(env)
        p = subprocess.run([self.bin] + args, env=full_env, capture_output=True, text=True, timeout=120)
        self.runs.append((name, args, p.returncode))
        print(f"  {name}: kerchunk-nos {args[0]} ... -> exit {p.returncode}", flush=True)
        if p.returncode != 0:
            print("    " + p.stderr.strip().replace("\n", "\n    ")[-800:], flush=True)
        return p

    def run_with_retries(self, name, status=None):
        tpl = self.templates[name]
        rs = tpl.get("retryStrategy", {})
        limit = int(rs.get("limit", 0))
        expr = rs.get("expression")
        for attempt in range(limit + 1):
            p = self.run_container(name, status)
            if p.returncode == 0:
                return "Succeeded"
            # A main container that exits non-zero is node phase Failed with
            # message "Error (exit code N)" (Argo's inferFailedReason).
            if expr is None or not retry_expression(expr, p.returncode, "Failed", f"Error (exit code {p.returncode})"):
                return "Failed"
        return "Failed"

    def run(self):
        status = self.run_with_retries(self.wt["spec"]["entrypoint"])
        on_exit = self.wt["spec"].get("onExit")
        if on_exit is None:
            raise SystemExit("the WorkflowTemplate has no onExit handler")
        handler = self.templates[on_exit]
        for group in handler["steps"]:
            for step in group:
                when = step.get("when")
                if when is None or when_holds(substitute(when, self.params, status)):
                    self.run_with_retries(step["template"], status)
        return status


def seed_message(root, bucket, key):
    env = json.loads(open(f"{root}/tests/static/messages/new-ofs-object-tbofs.json").read())
    inner = json.loads(env["Message"])
    rec = inner["Records"][0]
    rec["s3"]["bucket"]["name"] = bucket
    rec["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    rec["s3"]["object"]["key"] = key
    env["Message"] = json.dumps(inner)
    return json.dumps(env)


def drain(sqs, url):
    bodies = []
    while True:
        r = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = r.get("Messages", [])
        if not msgs:
            return bodies
        for m in msgs:
            bodies.append(m["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--port", required=True)
    a = ap.parse_args()

    wt_path = f"{a.root}/deploy/argo/workflowtemplate-extract-single.yaml"
    wt = yaml.safe_load(open(wt_path))
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    src, dest = "noaa-ofs-pds", "dest-bucket"
    good_key = "dbofs.20230323/nos.dbofs.fields.f001.20230323.t12z.nc"
    bad_key = "dbofs.20230323/nos.dbofs.fields.f002.20230323.t12z.nc"
    s3.create_bucket(Bucket=src)
    s3.create_bucket(Bucket=dest)
    # The NOAA bucket is public and read unsigned: public-read, as on AWS.
    s3.upload_file(f"{a.root}/fixtures/files/ofs/{good_key}", src, good_key, ExtraArgs={"ACL": "public-read"})
    # A wanted key whose object is not HDF5 at all: a permanent failure.
    s3.put_object(Bucket=src, Key=bad_key, Body=b"not an HDF5 file\n" * 4096, ACL="public-read")
    dlq = sqs.create_queue(QueueName="nextgen-nos-newofsobject-dlq")["QueueUrl"]

    # 1. A workflow that fails for good leaves its message in the DLQ.
    print("workflow 1: extract_single on a corrupt file", flush=True)
    bad_msg = seed_message(a.root, src, bad_key)
    wf = Workflow(wt, a.bin, {"message": bad_msg, "dest-bucket": dest, "dead-letter-queue": dlq})
    status = wf.run()
    check(status == "Failed", f"workflow status Failed (got {status})")
    main_runs = [r for r in wf.runs if r[0] == wt["spec"]["entrypoint"]]
    check([r[2] for r in main_runs] == [1], f"extract_single exited 1 once, not retried (got {[r[2] for r in main_runs]})")
    dl_runs = [r for r in wf.runs if r[1][0] == "dead-letter"]
    check(len(dl_runs) == 1 and dl_runs[0][2] == 0, "the exit handler ran `kerchunk-nos dead-letter` and it exited 0")
    check(
        len(dl_runs) == 1 and dl_runs[0][1][:3] == ["dead-letter", "--queue", dlq] and dl_runs[0][1][3] == bad_msg,
        "the exit handler's command line is dead-letter --queue DLQ MESSAGE",
    )
    bodies = drain(sqs, dlq)
    check(bodies == [bad_msg], f"the DLQ holds exactly the original body ({len(bodies)} message(s))")
    listed = s3.list_objects_v2(Bucket=dest).get("Contents", [])
    check(listed == [], "nothing was written for the failed message")

    # 2. A workflow that succeeds sends nothing.
    print("workflow 2: extract_single on a good file", flush=True)
    good_msg = seed_message(a.root, src, good_key)
    wf = Workflow(wt, a.bin, {"message": good_msg, "dest-bucket": dest, "dead-letter-queue": dlq})
    status = wf.run()
    check(status == "Succeeded", f"workflow status Succeeded (got {status})")
    check(not any(r[1][0] == "dead-letter" for r in wf.runs), "the exit handler did not run dead-letter")
    ref_key = "nos/nos.dbofs.fields.f001.20230323.t12z.nc.zarr"
    refs = json.loads(s3.get_object(Bucket=dest, Key=ref_key)["Body"].read())
    urls = {v[0] for v in refs["refs"].values() if isinstance(v, list) and v}
    check(urls == {f"s3://{src}/{good_key}"}, f"s3://{dest}/{ref_key} written, refs point at the source")
    check(drain(sqs, dlq) == [], "the DLQ is empty after the successful run")

    # 3. The verb on its own.
    print("dead-letter verb", flush=True)
    odd = 'tab\there "quoted" \\ back\nnewline\r\n ünïcödé ✓ 𝄞 trailing  '
    p = subprocess.run([a.bin, "dead-letter", "--queue", dlq, odd], capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"dead-letter of an odd body exits 0 (got {p.returncode}: {p.stderr.strip()[-300:]})")
    check(drain(sqs, dlq) == [odd], "the odd body arrives byte for byte")
    out = json.loads(p.stdout) if p.returncode == 0 else {}
    check(out.get("md5_of_body") == hashlib.md5(odd.encode()).hexdigest(), "reported MD5 is the body's")
    p = subprocess.run([a.bin, "dead-letter", "--queue", dlq, ""], capture_output=True, text=True, timeout=60)
    check(p.returncode == 1, f"empty body exits 1 (got {p.returncode})")
    missing = dlq.rsplit("/", 1)[0] + "/no-such-queue"
    p = subprocess.run([a.bin, "dead-letter", "--queue", missing, "x"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 1, f"unknown queue exits 1 (got {p.returncode}: {p.stderr.strip()[-200:]})")
    closed = dict(os.environ, AWS_ENDPOINT_URL="http://127.0.0.1:9")
    p = subprocess.run(
        [a.bin, "dead-letter", "--max-attempts", "1", "--queue", dlq, "x"],
        capture_output=True, text=True, timeout=120, env=closed,
    )
    check(p.returncode == 3, f"unreachable endpoint exits 3 (got {p.returncode})")
    p = subprocess.run([a.bin, "dead-letter", "x"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2, f"missing --queue exits 2 (got {p.returncode})")

    print(f"dead-letter: {len(PASSED)} passed, {len(FAILED)} failed")
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
