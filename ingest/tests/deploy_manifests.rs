//! Every manifest under `deploy/` parses, hangs together, and runs only
//! command lines the `kerchunk-nos` CLI accepts.
//!
//! * Every YAML document under `deploy/` is parsed (serde_norway).
//! * Argo wiring: each Sensor dependency names an EventSource event that
//!   exists; each Sensor trigger submits a WorkflowTemplate that exists,
//!   passes only parameters that template declares, and routes the SQS body
//!   (`dataKey: body`) into its `message` parameter. Both seed queues are
//!   consumed. WorkflowTemplates take the image as a parameter, retry only
//!   transient failures (exit 3, OOM kill, eviction, ...; the retry
//!   expression is evaluated on the cases), and set resource requests and
//!   limits.
//! * Nothing is lost (issue 19): every WorkflowTemplate has an `onExit`
//!   handler that, when `{{workflow.status}} != Succeeded`, runs exactly
//!   `kerchunk-nos dead-letter --queue {{workflow.parameters.dead-letter-queue}}
//!   {{workflow.parameters.message}}`, the queue being the `-dlq` of the
//!   queue its Sensor's events come from. (tests/dead_letter_test.sh runs
//!   that handler against moto.)
//! * Pod Security "restricted" for every pod spec (WorkflowTemplates incl.
//!   exit handlers, the worker Deployment, the EventSource and Sensor pods,
//!   Argo's executor containers via deploy/argo-controller/).
//! * Memory limits sit above the CLI's own guards: limit >= 1.25 x (32 MiB
//!   + 70 x --max-metadata-bytes x concurrency) (deploy/README.md).
//! * Every kerchunk-nos image is pinned to `kerchunk-nos --version`.
//! * Retry timing: the worst-case retry window fits in backoff.maxDuration,
//!   which fits in the workflow's activeDeadlineSeconds, and deploy/README.md
//!   states those numbers.
//! * Every container running the kerchunk-nos image has `command:
//!   ["/kerchunk-nos"]` (the image is FROM scratch) and its `args`, with
//!   Argo `{{...}}` parameters substituted (template defaults, the Sensor's
//!   arguments, and the seed's real SNS messages for `message`) and
//!   Kubernetes `$(VAR)` references expanded from the container's env, are
//!   run through the real binary twice:
//!   1. `ARGS --help` must exit 0: the verb and every flag before `--help`
//!      exist and every value parses (clap stops at `--help`, so required
//!      arguments are not checked here);
//!   2. `ARGS` itself, with the container's env and AWS pointed at a closed
//!      loopback port, must not exit 2 (clap's usage error, also used by
//!      kerchunk-nos for bad option values) before it gets to I/O. clap
//!      parses before anything else runs, so a usage error comes within
//!      milliseconds; a process still running after the grace period has
//!      parsed its arguments and is killed.
//!
//! The checker is itself tested on broken command lines (unknown verb,
//! unknown flag, missing positional) which it must reject.
//!
//! The lead may later expose the clap `Cli` (`ingest::cli::Cli`) so that
//! step 2 can be `Cli::try_parse_from` with no process and no timing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kerchunk-nos");
/// How long a process may run before it is taken to have parsed its args.
const GRACE: Duration = Duration::from_secs(3);

fn repo() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    p.canonicalize().unwrap_or(p)
}

fn seed_message(name: &str) -> String {
    let p = repo().join("tests/static/messages").join(name);
    let s = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let s = s.trim().to_string();
    serde_json::from_str::<Value>(&s).unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
    s
}

/// The message a verb is given in production: the SQS body of its queue.
fn message_for(verb: &str) -> String {
    match verb {
        "extract_single" | "extract-single" => seed_message("new-ofs-object-tbofs.json"),
        "update_model_run" | "update-model-run" => seed_message("zarr-updated-dbofs.json"),
        // The exit handler forwards whichever body its workflow got; it
        // does not parse it, so any real body stands for both.
        "dead-letter" | "dead_letter" => seed_message("new-ofs-object-tbofs.json"),
        other => panic!("no representative message for verb {other:?}"),
    }
}

struct Doc {
    file: PathBuf,
    value: Value,
}

impl Doc {
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn label(&self) -> String {
        format!("{}: {} {}", self.file.display(), self.kind(), self.name())
    }
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

fn load_docs() -> Vec<Doc> {
    let mut files = Vec::new();
    yaml_files(&repo().join("deploy"), &mut files);
    assert!(!files.is_empty(), "no YAML under deploy/");
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
            let value = Value::deserialize(de)
                .unwrap_or_else(|e| panic!("{}: document {i}: {e}", file.display()));
            if value.is_null() {
                continue;
            }
            assert!(
                value["apiVersion"].is_string() && value["kind"].is_string(),
                "{}: document {i} has no apiVersion/kind",
                file.display()
            );
            docs.push(Doc {
                file: file.clone(),
                value,
            });
        }
    }
    docs
}

fn params(list: &Value) -> Vec<(String, Option<String>)> {
    list.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    let name = p["name"]
                        .as_str()
                        .expect("parameter without name")
                        .to_string();
                    let value = match &p["value"] {
                        Value::Null => None,
                        Value::String(s) => Some(s.clone()),
                        v => Some(v.to_string()),
                    };
                    (name, value)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A container that runs kerchunk-nos, found anywhere in a document.
struct Container {
    path: String,
    value: Value,
    /// `inputs.parameters` of the enclosing Argo template, if any.
    inputs: Vec<(String, Option<String>)>,
}

fn find_containers(
    v: &Value,
    path: &str,
    inputs: &[(String, Option<String>)],
    out: &mut Vec<Container>,
) {
    match v {
        Value::Object(m) => {
            let inputs_here = match m.get("inputs") {
                Some(i) => params(&i["parameters"]),
                None => inputs.to_vec(),
            };
            if m.contains_key("image")
                && (m.contains_key("command") || m.contains_key("args") || m.contains_key("name"))
            {
                out.push(Container {
                    path: path.to_string(),
                    value: v.clone(),
                    inputs: inputs_here.clone(),
                });
                return;
            }
            for (k, c) in m {
                find_containers(c, &format!("{path}.{k}"), &inputs_here, out);
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                find_containers(c, &format!("{path}[{i}]"), inputs, out);
            }
        }
        _ => {}
    }
}

fn string_list(v: &Value, what: &str) -> Vec<String> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                other => panic!("{what}: non-scalar element {other}"),
            })
            .collect(),
        other => panic!("{what}: not a list: {other}"),
    }
}

/// Replaces `{{ name }}` from `vars`; any left over is an error.
fn substitute_argo(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed {{{{ in {s:?}"))?;
        let name = after[..end].trim();
        let value = vars.get(name).ok_or_else(|| {
            format!("unknown or value-less Argo parameter {{{{{name}}}}} in {s:?}")
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands Kubernetes `$(VAR)` from the container env (`$$(` escapes).
fn substitute_k8s(s: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("$(") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("$(");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let end = after
            .find(')')
            .ok_or_else(|| format!("unclosed $( in {s:?}"))?;
        let name = &after[..end];
        out.push_str(
            env.get(name)
                .ok_or_else(|| format!("$({name}) has no literal env value"))?,
        );
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn literal_env(c: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in c["env"].as_array().into_iter().flatten() {
        if let (Some(n), Some(v)) = (e["name"].as_str(), e["value"].as_str()) {
            env.insert(n.to_string(), v.to_string());
        }
    }
    env
}

/// Runs the binary with `args` + `--help`; Ok if clap accepted them.
fn check_help(args: &[String], env: &BTreeMap<String, String>) -> Result<(), String> {
    let mut all = args.to_vec();
    all.push("--help".into());
    let out = base_command(&all, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {BIN}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{} --help` exited {:?}: {}",
            shown(args),
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs the binary with `args` and no network; Ok unless it exits 2
/// (usage error) within the grace period.
fn check_parse(
    args: &[String],
    env: &BTreeMap<String, String>,
    scratch: &Path,
) -> Result<(), String> {
    // Checks run on several threads at once: one file each.
    static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let err_path = scratch.join(format!("stderr-{run}"));
    let err = std::fs::File::create(&err_path).unwrap();
    let mut child = base_command(args, env)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {BIN}: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if start.elapsed() > GRACE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    match status.and_then(|s| s.code()) {
        Some(2) => Err(format!(
            "`{}` was rejected (exit 2): {}",
            shown(args),
            stderr.trim()
        )),
        _ => Ok(()),
    }
}

fn base_command(args: &[String], env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .envs(env)
        // Never reach AWS: a closed loopback port, fake credentials, no IMDS.
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("RUST_LOG", "off")
        .stdin(Stdio::null());
    cmd
}

fn shown(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            if a.chars().count() > 40 {
                format!("'{}…'", a.chars().take(30).collect::<String>())
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_cli(
    args: &[String],
    env: &BTreeMap<String, String>,
    scratch: &Path,
) -> Result<(), String> {
    check_help(args, env)?;
    check_parse(args, env, scratch)
}

/// One kerchunk-nos invocation a manifest can produce.
struct Invocation {
    origin: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
}

fn is_kerchunk_image(image: &str) -> bool {
    image.contains("kerchunk-nos") || image.contains("{{workflow.parameters.image}}")
}

/// The invocations of one container, with Argo parameter values `vars`
/// (`message` is replaced per verb by the seed message).
fn invocation(
    origin: &str,
    c: &Container,
    vars: &BTreeMap<String, String>,
) -> Result<Invocation, String> {
    let command = string_list(&c.value["command"], &format!("{origin}: command"));
    if command != ["/kerchunk-nos"] {
        return Err(format!(
            "{origin}: command must be [\"/kerchunk-nos\"] (FROM scratch image: no shell, and Argo's \
             emissary needs an explicit command), got {command:?}"
        ));
    }
    let raw = string_list(&c.value["args"], &format!("{origin}: args"));
    let verb = raw
        .first()
        .ok_or_else(|| format!("{origin}: no args (no verb)"))?;
    if verb.contains("{{") || verb.contains("$(") {
        return Err(format!("{origin}: the verb must be literal, got {verb:?}"));
    }
    let mut vars = vars.clone();
    for key in ["workflow.parameters.message", "inputs.parameters.message"] {
        if vars.contains_key(key) {
            vars.insert(key.into(), message_for(verb));
        }
    }
    let env = literal_env(&c.value);
    let mut args = Vec::new();
    for a in &raw {
        let a = substitute_argo(a, &vars).map_err(|e| format!("{origin}: {e}"))?;
        let a = substitute_k8s(&a, &env).map_err(|e| format!("{origin}: {e}"))?;
        args.push(a);
    }
    let mut env_sub = BTreeMap::new();
    for (k, v) in &env {
        let v = substitute_argo(v, &vars).map_err(|e| format!("{origin}: env {k}: {e}"))?;
        env_sub.insert(k.clone(), v);
    }
    Ok(Invocation {
        origin: origin.to_string(),
        args,
        env: env_sub,
    })
}

fn vars_from(
    workflow: &[(String, Option<String>)],
    inputs: &[(String, Option<String>)],
) -> BTreeMap<String, String> {
    // A parameter without a value stays unset (so using it is an error),
    // except `message`, which is filled per verb by `invocation`.
    let mut vars = BTreeMap::new();
    for (scope, list) in [("workflow", workflow), ("inputs", inputs)] {
        for (n, v) in list {
            if let Some(v) = v.clone().or_else(|| (n == "message").then(String::new)) {
                vars.insert(format!("{scope}.parameters.{n}"), v);
            }
        }
    }
    vars
}

fn collect_invocations(docs: &[Doc]) -> Result<Vec<Invocation>, Vec<String>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let templates: BTreeMap<&str, &Doc> = docs
        .iter()
        .filter(|d| d.kind() == "WorkflowTemplate")
        .map(|d| (d.name(), d))
        .collect();
    for d in docs {
        let mut containers = Vec::new();
        find_containers(&d.value, "", &[], &mut containers);
        for c in &containers {
            let image = c.value["image"].as_str().unwrap_or("");
            if !is_kerchunk_image(image) {
                continue;
            }
            let origin = format!("{} ({})", d.label(), c.path);
            let wf = params(&d.value["spec"]["arguments"]["parameters"]);
            match invocation(&origin, c, &vars_from(&wf, &c.inputs)) {
                Ok(i) => out.push(i),
                Err(e) => errors.push(e),
            }
        }
    }
    // The same containers as Sensors submit them: the Sensor's arguments
    // override the template defaults.
    for d in docs.iter().filter(|d| d.kind() == "Sensor") {
        for (ti, t) in d.value["spec"]["triggers"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let wf = &t["template"]["argoWorkflow"]["source"]["resource"];
            let Some(tname) = wf["spec"]["workflowTemplateRef"]["name"].as_str() else {
                continue;
            };
            let Some(tdoc) = templates.get(tname) else {
                continue; // reported by the wiring test
            };
            let mut merged = params(&tdoc.value["spec"]["arguments"]["parameters"]);
            for (n, v) in params(&wf["spec"]["arguments"]["parameters"]) {
                if let Some(slot) = merged.iter_mut().find(|(m, _)| *m == n) {
                    slot.1 = v;
                }
            }
            let mut containers = Vec::new();
            find_containers(&tdoc.value, "", &[], &mut containers);
            for c in &containers {
                let origin = format!("{} trigger {ti} -> {} ({})", d.label(), tname, c.path);
                match invocation(&origin, c, &vars_from(&merged, &c.inputs)) {
                    Ok(i) => out.push(i),
                    Err(e) => errors.push(e),
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

#[test]
fn every_manifest_command_line_is_accepted_by_the_cli() {
    let docs = load_docs();
    let invocations = collect_invocations(&docs).unwrap_or_else(|e| panic!("{}", e.join("\n")));
    let scratch = tempfile::tempdir().unwrap();
    let verbs: BTreeSet<&str> = invocations.iter().map(|i| i.args[0].as_str()).collect();
    for want in [
        "extract_single",
        "update_model_run",
        "worker",
        "dead-letter",
    ] {
        assert!(
            verbs.contains(want),
            "no manifest runs `{want}` (verbs: {verbs:?})"
        );
    }
    // All at once: a command line that parses runs until the grace period
    // ends, so checking them one after another waited GRACE per line.
    let results: Vec<Result<(), String>> = std::thread::scope(|s| {
        let running: Vec<_> = invocations
            .iter()
            .map(|inv| s.spawn(|| check_cli(&inv.args, &inv.env, scratch.path())))
            .collect();
        running
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|_| Err("checker panicked".into())))
            .collect()
    });
    let mut failures = Vec::new();
    for (inv, r) in invocations.iter().zip(results) {
        match r {
            Ok(()) => eprintln!("ok: {}: {}", inv.origin, shown(&inv.args)),
            Err(e) => failures.push(format!("{}: {e}", inv.origin)),
        }
    }
    assert!(
        failures.is_empty(),
        "rejected command lines:\n{}",
        failures.join("\n")
    );
}

/// The checker must reject what the CLI rejects, or the test above proves
/// nothing.
#[test]
fn the_checker_rejects_bad_command_lines() {
    let scratch = tempfile::tempdir().unwrap();
    let env = BTreeMap::new();
    let msg = message_for("extract_single");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let good = {
        let mut a = s(&["extract_single"]);
        a.push(msg.clone());
        a.extend(s(&["nextgen-dmac", "nos", "--log-json"]));
        a
    };
    check_cli(&good, &env, scratch.path()).expect("a good command line was rejected");
    let bad: Vec<(&str, Vec<String>)> = vec![
        ("unknown verb", s(&["extract_all", "x"])),
        ("unknown flag", {
            let mut a = good.clone();
            a.push("--no-such-flag".into());
            a
        }),
        ("missing positional", good[..3].to_vec()),
        ("extra positional", {
            // MESSAGE DEST_BUCKET DEST_PREFIX [MODELS] takes at most four.
            let mut a = good.clone();
            a.insert(4, "dbofs".into());
            a.insert(5, "surplus".into());
            a
        }),
        (
            "worker without --queue",
            s(&["worker", "--dest", "s3://b/p"]),
        ),
        (
            "out-of-range value",
            s(&[
                "worker",
                "--queue",
                "q",
                "--dest",
                "s3://b/p",
                "--wait-seconds",
                "99",
            ]),
        ),
    ];
    std::thread::scope(|s| {
        let running: Vec<_> = bad
            .iter()
            .map(|(what, args)| {
                (
                    what,
                    args,
                    s.spawn(|| check_cli(args, &env, scratch.path())),
                )
            })
            .collect();
        for (what, args, t) in running {
            assert!(
                t.join().is_ok_and(|r| r.is_err()),
                "{what}: `{}` was accepted",
                shown(args)
            );
        }
    });
}

#[test]
fn argo_wiring_is_consistent() {
    let docs = load_docs();
    let mut events: BTreeSet<(String, String)> = BTreeSet::new();
    let mut queues = BTreeSet::new();
    for d in docs.iter().filter(|d| d.kind() == "EventSource") {
        for (ename, e) in d.value["spec"]["sqs"].as_object().into_iter().flatten() {
            events.insert((d.name().to_string(), ename.clone()));
            queues.insert(e["queue"].as_str().unwrap_or("").to_string());
            assert_eq!(
                e["jsonBody"],
                Value::Bool(true),
                "{}: {ename}: jsonBody must be true (else the body arrives base64)",
                d.label()
            );
            assert!(e["region"].is_string(), "{}: {ename}: no region", d.label());
        }
    }
    for q in ["nextgen-nos-newofsobject", "nextgen-nos-updatemultizarr"] {
        assert!(
            queues.contains(q),
            "no EventSource reads queue {q} (have {queues:?})"
        );
    }

    let templates: BTreeMap<&str, &Doc> = docs
        .iter()
        .filter(|d| d.kind() == "WorkflowTemplate")
        .map(|d| (d.name(), d))
        .collect();
    assert!(
        templates.len() >= 2,
        "expected WorkflowTemplates for both verbs"
    );
    for (name, t) in &templates {
        let declared: Vec<String> = params(&t.value["spec"]["arguments"]["parameters"])
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for p in ["message", "image"] {
            assert!(
                declared.iter().any(|d| d == p),
                "WorkflowTemplate {name}: no `{p}` parameter"
            );
        }
        for tpl in t.value["spec"]["templates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(c) = tpl.get("container") else {
                continue;
            };
            assert_eq!(
                c["image"], "{{workflow.parameters.image}}",
                "{name}: image must be the `image` parameter"
            );
            let rs = &tpl["retryStrategy"];
            let expr = rs["expression"].as_str().unwrap_or("");
            check_retry_expression(expr).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(
                rs["limit"].is_string() || rs["limit"].is_number(),
                "{name}: retryStrategy without limit"
            );
            for k in ["requests", "limits"] {
                for r in ["cpu", "memory"] {
                    assert!(
                        c["resources"][k][r].is_string(),
                        "{name}: no resources.{k}.{r}"
                    );
                }
            }
        }
    }

    let mut triggered = BTreeSet::new();
    for s in docs.iter().filter(|d| d.kind() == "Sensor") {
        let deps: Vec<&Value> = s.value["spec"]["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        assert!(!deps.is_empty(), "{}: no dependencies", s.label());
        let mut dep_names = BTreeSet::new();
        for dep in deps {
            let key = (
                dep["eventSourceName"].as_str().unwrap_or("").to_string(),
                dep["eventName"].as_str().unwrap_or("").to_string(),
            );
            assert!(
                events.contains(&key),
                "{}: dependency on unknown event {key:?} (have {events:?})",
                s.label()
            );
            dep_names.insert(dep["name"].as_str().unwrap_or("").to_string());
        }
        for t in s.value["spec"]["triggers"].as_array().into_iter().flatten() {
            let aw = &t["template"]["argoWorkflow"];
            let wf = &aw["source"]["resource"];
            assert_eq!(
                wf["kind"],
                "Workflow",
                "{}: trigger must submit a Workflow",
                s.label()
            );
            let tname = wf["spec"]["workflowTemplateRef"]["name"]
                .as_str()
                .unwrap_or("");
            let tdoc = templates
                .get(tname)
                .unwrap_or_else(|| panic!("{}: unknown WorkflowTemplate {tname:?}", s.label()));
            triggered.insert(tname.to_string());
            let declared: BTreeSet<String> = params(&tdoc.value["spec"]["arguments"]["parameters"])
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            let passed = params(&wf["spec"]["arguments"]["parameters"]);
            for (n, _) in &passed {
                assert!(
                    declared.contains(n),
                    "{}: passes {n:?}, not a parameter of {tname}",
                    s.label()
                );
            }
            let mut message_routed = false;
            for p in aw["parameters"].as_array().into_iter().flatten() {
                let dest = p["dest"].as_str().unwrap_or("");
                let dep = p["src"]["dependencyName"].as_str().unwrap_or("");
                assert!(
                    dep_names.contains(dep),
                    "{}: parameter from unknown dependency {dep:?}",
                    s.label()
                );
                let idx: usize = dest
                    .strip_prefix("spec.arguments.parameters.")
                    .and_then(|r| r.strip_suffix(".value"))
                    .and_then(|i| i.parse().ok())
                    .unwrap_or_else(|| panic!("{}: unexpected parameter dest {dest:?}", s.label()));
                let target = passed.get(idx).map(|(n, _)| n.as_str());
                if target == Some("message") && p["src"]["dataKey"] == "body" {
                    message_routed = true;
                }
            }
            assert!(
                message_routed,
                "{}: the SQS body (dataKey: body) is not routed to `message`",
                s.label()
            );
        }
    }
    assert_eq!(
        triggered,
        templates.keys().map(|s| s.to_string()).collect(),
        "every WorkflowTemplate should be triggered by a Sensor"
    );
}

#[test]
fn worker_deployment_runs_the_worker() {
    let docs = load_docs();
    let deps: Vec<&Doc> = docs.iter().filter(|d| d.kind() == "Deployment").collect();
    assert_eq!(deps.len(), 1, "expected one worker Deployment");
    let c = &deps[0].value["spec"]["template"]["spec"]["containers"][0];
    let args = string_list(&c["args"], "worker args");
    assert_eq!(args.first().map(String::as_str), Some("worker"));
    for flag in ["--queue", "--update-queue", "--dest", "--log-json"] {
        assert!(
            args.iter().any(|a| a == flag),
            "worker Deployment lacks {flag}"
        );
    }
    for k in ["requests", "limits"] {
        assert!(
            c["resources"][k]["memory"].is_string(),
            "worker: no resources.{k}.memory"
        );
    }
}

// ---------------------------------------------------------------- retries

/// One `||` term of a retry expression, in the subset the manifests use.
enum RetryTerm {
    ExitCode(String),
    Status(String),
    /// `lastRetry.message matches "(?i)a|b|c"`: case-insensitive
    /// alternation of literal words (no other regex syntax is accepted).
    MessageMatches(Vec<String>),
}

fn parse_retry_expression(expr: &str) -> Result<Vec<RetryTerm>, String> {
    let quoted = |s: &str| -> Option<String> {
        let s = s.trim();
        (s.len() >= 2 && s.starts_with('"') && s.ends_with('"')).then(|| s[1..s.len() - 1].into())
    };
    let mut terms = Vec::new();
    for t in expr.split("||") {
        let t = t.trim();
        let term = if let Some(v) = t.strip_prefix("lastRetry.exitCode ==").and_then(quoted) {
            RetryTerm::ExitCode(v)
        } else if let Some(v) = t.strip_prefix("lastRetry.status ==").and_then(quoted) {
            RetryTerm::Status(v)
        } else if let Some(v) = t.strip_prefix("lastRetry.message matches").and_then(quoted) {
            let re = v
                .strip_prefix("(?i)")
                .ok_or_else(|| format!("message regex must be (?i)...: {v:?}"))?;
            if re
                .chars()
                .any(|c| !(c.is_ascii_alphanumeric() || c == ' ' || c == '|'))
            {
                return Err(format!("message regex beyond literal alternation: {v:?}"));
            }
            RetryTerm::MessageMatches(re.split('|').map(|w| w.to_lowercase()).collect())
        } else {
            return Err(format!("retry expression term not understood: {t:?}"));
        };
        terms.push(term);
    }
    Ok(terms)
}

fn retry_decision(terms: &[RetryTerm], exit_code: &str, status: &str, message: &str) -> bool {
    let message = message.to_lowercase();
    terms.iter().any(|t| match t {
        RetryTerm::ExitCode(c) => c == exit_code,
        RetryTerm::Status(s) => s == status,
        RetryTerm::MessageMatches(words) => words.iter().any(|w| message.contains(w.as_str())),
    })
}

/// What Argo reports for each kind of end of an attempt (`lastRetry.*`:
/// exit code, node phase, message; Argo's inferFailedReason) and whether
/// it must be retried.
const RETRY_CASES: &[(&str, &str, &str, &str, bool)] = &[
    ("permanent", "1", "Failed", "Error (exit code 1)", false),
    ("usage", "2", "Failed", "Error (exit code 2)", false),
    ("transient", "3", "Failed", "Error (exit code 3)", true),
    (
        "OOM kill",
        "137",
        "Failed",
        "OOMKilled (exit code 137)",
        true,
    ),
    (
        "eviction",
        "-1",
        "Failed",
        "The node was low on resource: memory. Threshold quantity: 100Mi, available: 20Mi.",
        true,
    ),
    (
        "node shutdown",
        "-1",
        "Failed",
        "Pod was terminated in response to imminent node shutdown.",
        true,
    ),
    ("pod deleted", "-1", "Error", "pod deleted", true),
    (
        "attempt deadline",
        "-1",
        "Failed",
        "Pod was active on the node longer than the specified deadline",
        true,
    ),
    (
        "failed before start",
        "-1",
        "Error",
        "Pod failed before main container starts due to ErrImagePull",
        true,
    ),
];

fn check_retry_expression(expr: &str) -> Result<(), String> {
    let terms = parse_retry_expression(expr)?;
    for (what, code, status, message, want) in RETRY_CASES {
        if retry_decision(&terms, code, status, message) != *want {
            return Err(format!(
                "retry expression {expr:?}: {what} (exit {code}, {status}, {message:?}) \
                 should {}be retried",
                if *want { "" } else { "not " }
            ));
        }
    }
    Ok(())
}

#[test]
fn the_retry_checker_rejects_wrong_expressions() {
    for bad in [
        r#"lastRetry.exitCode == "3""#,     // OOM not retried
        r#"asInt(lastRetry.exitCode) > 0"#, // not understood
        r#"lastRetry.exitCode == "3" || lastRetry.status == "Failed""#, // retries exit 1
        r#"lastRetry.exitCode == "3" || lastRetry.exitCode == "137" || lastRetry.status == "Error" || lastRetry.message matches "(?i)exit code""#,
    ] {
        assert!(check_retry_expression(bad).is_err(), "{bad} was accepted");
    }
}

/// Seconds of an Argo duration string: `30`, `30s`, `5m`, `1h`.
fn argo_seconds(v: &Value) -> u64 {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("not a duration: {other}"),
    };
    let (num, mult) = match s.chars().last() {
        Some('s') => (&s[..s.len() - 1], 1),
        Some('m') => (&s[..s.len() - 1], 60),
        Some('h') => (&s[..s.len() - 1], 3600),
        _ => (s.as_str(), 1),
    };
    num.parse::<u64>()
        .unwrap_or_else(|e| panic!("duration {s:?}: {e}"))
        * mult
}

fn int_value(v: &Value, what: &str) -> u64 {
    match v {
        Value::String(s) => s.parse().unwrap_or_else(|e| panic!("{what} {s:?}: {e}")),
        Value::Number(n) => n.as_u64().unwrap_or_else(|| panic!("{what}: {n}")),
        other => panic!("{what}: not an integer: {other}"),
    }
}

/// Time a pod may take to be scheduled and started before its
/// activeDeadlineSeconds clock runs (image cached: the image is one file).
const POD_START_SECONDS: u64 = 30;

#[test]
fn retry_windows_fit_the_deadlines_and_the_readme() {
    let docs = load_docs();
    let readme = std::fs::read_to_string(repo().join("deploy/README.md")).unwrap();
    let mut checked = 0;
    for t in docs.iter().filter(|d| d.kind() == "WorkflowTemplate") {
        let wf_deadline = int_value(
            &t.value["spec"]["activeDeadlineSeconds"],
            "spec.activeDeadlineSeconds",
        );
        for tpl in t.value["spec"]["templates"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let rs = &tpl["retryStrategy"];
            if rs.is_null() || tpl["name"] != t.value["spec"]["entrypoint"] {
                continue;
            }
            let name = format!("{} {}", t.label(), tpl["name"]);
            let limit = int_value(&rs["limit"], "limit");
            let attempt = int_value(&tpl["activeDeadlineSeconds"], "activeDeadlineSeconds");
            let b = &rs["backoff"];
            let base = argo_seconds(&b["duration"]);
            let factor = int_value(&b["factor"], "factor");
            let max_duration = argo_seconds(&b["maxDuration"]);
            // Argo waits duration x factor^(n-1) after the n-th failed attempt.
            let waits: u64 = (0..limit).map(|i| base * factor.pow(i as u32)).sum();
            let worst = (limit + 1) * (attempt + POD_START_SECONDS) + waits;
            eprintln!(
                "{name}: {} attempts x ({attempt} + {POD_START_SECONDS}) s + waits {waits} s = \
                 {worst} s; maxDuration {max_duration} s; workflow deadline {wf_deadline} s",
                limit + 1
            );
            assert!(
                worst <= max_duration,
                "{name}: worst-case retry window {worst} s exceeds backoff.maxDuration \
                 {max_duration} s (the last retries would never run)"
            );
            assert!(
                max_duration < wf_deadline,
                "{name}: maxDuration {max_duration} s must be under the workflow's \
                 activeDeadlineSeconds {wf_deadline} s"
            );
            for fact in [
                format!("{worst} s"),
                format!("activeDeadlineSeconds: {wf_deadline}"),
                format!("maxDuration: {}", b["maxDuration"].as_str().unwrap_or("")),
                format!("{} retries", limit),
                format!("{attempt} s per attempt"),
            ] {
                assert!(
                    readme.contains(&fact),
                    "deploy/README.md does not state {fact:?} ({name})"
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "expected two retrying entrypoints, checked {checked}"
    );
}

// ---------------------------------------------------------------- exit handler

const DEAD_LETTER_ARGS: &[&str] = &[
    "dead-letter",
    "--queue",
    "{{workflow.parameters.dead-letter-queue}}",
    "{{workflow.parameters.message}}",
    "--log-json",
];

#[test]
fn failed_workflows_dead_letter_their_message() {
    let docs = load_docs();
    // queue of each WorkflowTemplate, through Sensor -> EventSource.
    let mut event_queue = BTreeMap::new();
    for d in docs.iter().filter(|d| d.kind() == "EventSource") {
        for (ename, e) in d.value["spec"]["sqs"].as_object().into_iter().flatten() {
            event_queue.insert(
                (d.name().to_string(), ename.clone()),
                e["queue"].as_str().unwrap_or("").to_string(),
            );
        }
    }
    let mut template_queue = BTreeMap::new();
    for s in docs.iter().filter(|d| d.kind() == "Sensor") {
        let dep = &s.value["spec"]["dependencies"][0];
        let key = (
            dep["eventSourceName"].as_str().unwrap_or("").to_string(),
            dep["eventName"].as_str().unwrap_or("").to_string(),
        );
        for t in s.value["spec"]["triggers"].as_array().into_iter().flatten() {
            let tname =
                t["template"]["argoWorkflow"]["source"]["resource"]["spec"]["workflowTemplateRef"]
                    ["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
            template_queue.insert(tname, event_queue.get(&key).cloned().unwrap_or_default());
        }
    }
    let mut checked = 0;
    for t in docs.iter().filter(|d| d.kind() == "WorkflowTemplate") {
        let name = t.label();
        let templates: BTreeMap<&str, &Value> = t.value["spec"]["templates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| (x["name"].as_str().unwrap_or(""), x))
            .collect();
        let entry = templates[t.value["spec"]["entrypoint"].as_str().unwrap_or("")];
        assert_eq!(
            entry["container"]["args"][1], "{{workflow.parameters.message}}",
            "{name}: the entrypoint's message argument"
        );
        let on_exit = t.value["spec"]["onExit"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no spec.onExit exit handler"));
        let handler = templates
            .get(on_exit)
            .unwrap_or_else(|| panic!("{name}: onExit names unknown template {on_exit:?}"));
        let steps: Vec<&Value> = handler["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g.as_array().into_iter().flatten())
            .collect();
        assert_eq!(
            steps.len(),
            1,
            "{name}: the exit handler should have one step"
        );
        assert_eq!(
            steps[0]["when"], "{{workflow.status}} != Succeeded",
            "{name}: the dead-letter step must run exactly when the workflow did not succeed"
        );
        let dl = templates
            .get(steps[0]["template"].as_str().unwrap_or(""))
            .unwrap_or_else(|| panic!("{name}: exit-handler step names an unknown template"));
        let args = string_list(&dl["container"]["args"], "dead-letter args");
        assert_eq!(
            args, DEAD_LETTER_ARGS,
            "{name}: the exit handler must run exactly `kerchunk-nos dead-letter --queue \
             DLQ MESSAGE` (what tests/dead_letter_test.sh runs)"
        );
        assert_eq!(dl["container"]["image"], entry["container"]["image"]);
        check_retry_expression(dl["retryStrategy"]["expression"].as_str().unwrap_or(""))
            .unwrap_or_else(|e| panic!("{name}: dead-letter: {e}"));
        let dlq = params(&t.value["spec"]["arguments"]["parameters"])
            .into_iter()
            .find(|(n, _)| n == "dead-letter-queue")
            .and_then(|(_, v)| v)
            .unwrap_or_else(|| panic!("{name}: no dead-letter-queue default"));
        let queue = template_queue
            .get(t.name())
            .unwrap_or_else(|| panic!("{name}: not triggered by a Sensor"));
        assert!(
            dlq.starts_with("https://sqs.") && dlq.ends_with(&format!("/{queue}-dlq")),
            "{name}: dead-letter-queue {dlq:?} should be the URL of {queue}-dlq \
             (the queue's own dead-letter queue, so a redrive reprocesses it)"
        );
        checked += 1;
    }
    assert!(checked >= 2, "expected two WorkflowTemplates");
}

// ---------------------------------------------------------------- pod security

/// One pod spec: pod-level securityContext and its containers.
struct Pod {
    origin: String,
    pod_sc: Value,
    spec: Value,
    containers: Vec<(String, Value)>,
    /// Containers running kerchunk-nos (also need a read-only root).
    ours: bool,
}

fn pods(docs: &[Doc]) -> Vec<Pod> {
    let mut out = Vec::new();
    for d in docs {
        let v = &d.value;
        match d.kind() {
            "WorkflowTemplate" | "Workflow" => {
                for tpl in v["spec"]["templates"].as_array().into_iter().flatten() {
                    let Some(c) = tpl.get("container").or_else(|| tpl.get("script")) else {
                        continue;
                    };
                    let pod_sc = if tpl["securityContext"].is_null() {
                        v["spec"]["securityContext"].clone()
                    } else {
                        tpl["securityContext"].clone()
                    };
                    out.push(Pod {
                        origin: format!("{} template {}", d.label(), tpl["name"]),
                        pod_sc,
                        spec: v["spec"].clone(),
                        containers: vec![("main".into(), c.clone())],
                        ours: true,
                    });
                }
            }
            "Deployment" => {
                let spec = &v["spec"]["template"]["spec"];
                let mut containers = Vec::new();
                for key in ["initContainers", "containers"] {
                    for c in spec[key].as_array().into_iter().flatten() {
                        containers.push((c["name"].as_str().unwrap_or("").into(), c.clone()));
                    }
                }
                out.push(Pod {
                    origin: d.label(),
                    pod_sc: spec["securityContext"].clone(),
                    spec: spec.clone(),
                    containers,
                    ours: true,
                });
            }
            "EventSource" | "Sensor" => {
                let t = &v["spec"]["template"];
                out.push(Pod {
                    origin: d.label(),
                    pod_sc: t["securityContext"].clone(),
                    spec: t.clone(),
                    containers: vec![("main".into(), t["container"].clone())],
                    ours: false,
                });
            }
            "ConfigMap" if d.name() == "workflow-controller-configmap" => {
                // Argo's init/wait containers in every workflow pod.
                let exec = v["data"]["executor"].as_str().unwrap_or("");
                let exec: Value = serde_norway::from_str(exec)
                    .unwrap_or_else(|e| panic!("{}: data.executor: {e}", d.label()));
                let sc = exec["securityContext"].clone();
                out.push(Pod {
                    origin: format!("{} (Argo executor init/wait)", d.label()),
                    // The pod level is the WorkflowTemplate's; the executor
                    // repeats runAsNonRoot/seccomp at container level.
                    pod_sc: sc.clone(),
                    spec: Value::Null,
                    containers: vec![("init/wait".into(), exec)],
                    ours: false,
                });
            }
            _ => {}
        }
    }
    out
}

/// Violations of the Pod Security Standards "restricted" profile (v1.25+).
fn restricted_violations(p: &Pod) -> Vec<String> {
    let mut v = Vec::new();
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        if p.spec[k] == Value::Bool(true) {
            v.push(format!("{k}: true"));
        }
    }
    for vol in p.spec["volumes"].as_array().into_iter().flatten() {
        let allowed = [
            "name",
            "configMap",
            "csi",
            "downwardAPI",
            "emptyDir",
            "ephemeral",
            "persistentVolumeClaim",
            "projected",
            "secret",
        ];
        for k in vol.as_object().into_iter().flatten().map(|(k, _)| k) {
            if !allowed.contains(&k.as_str()) {
                v.push(format!("volume type {k}"));
            }
        }
    }
    let pod_non_root = p.pod_sc["runAsNonRoot"] == Value::Bool(true);
    let pod_seccomp = p.pod_sc["seccompProfile"]["type"].as_str();
    if p.pod_sc["runAsUser"] == 0 {
        v.push("pod runAsUser 0".into());
    }
    if p.containers.is_empty() {
        v.push("no containers found".into());
    }
    for (name, c) in &p.containers {
        let sc = &c["securityContext"];
        if sc["privileged"] == Value::Bool(true) {
            v.push(format!("{name}: privileged"));
        }
        if sc["allowPrivilegeEscalation"] != Value::Bool(false) {
            v.push(format!("{name}: allowPrivilegeEscalation must be false"));
        }
        let drop = string_list(&sc["capabilities"]["drop"], "capabilities.drop");
        if !drop.iter().any(|d| d == "ALL") {
            v.push(format!("{name}: capabilities.drop must contain ALL"));
        }
        for add in string_list(&sc["capabilities"]["add"], "capabilities.add") {
            if add != "NET_BIND_SERVICE" {
                v.push(format!("{name}: capabilities.add {add}"));
            }
        }
        if !(pod_non_root || sc["runAsNonRoot"] == Value::Bool(true))
            || sc["runAsNonRoot"] == Value::Bool(false)
        {
            v.push(format!("{name}: runAsNonRoot must be true"));
        }
        if sc["runAsUser"] == 0 {
            v.push(format!("{name}: runAsUser 0"));
        }
        let seccomp = sc["seccompProfile"]["type"].as_str().or(pod_seccomp);
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            v.push(format!(
                "{name}: seccompProfile must be RuntimeDefault (got {seccomp:?})"
            ));
        }
        if p.ours && sc["readOnlyRootFilesystem"] != Value::Bool(true) {
            v.push(format!("{name}: readOnlyRootFilesystem must be true"));
        }
        if !c["ports"].is_null()
            && c["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|p| !p["hostPort"].is_null())
        {
            v.push(format!("{name}: hostPort"));
        }
    }
    v
}

#[test]
fn every_pod_meets_pod_security_restricted() {
    let docs = load_docs();
    let pods = pods(&docs);
    let kinds: BTreeSet<&str> = docs.iter().map(|d| d.kind()).collect();
    for want in [
        "WorkflowTemplate",
        "Deployment",
        "EventSource",
        "Sensor",
        "ConfigMap",
    ] {
        assert!(kinds.contains(want), "no {want} under deploy/");
    }
    // 2 WorkflowTemplates x (entrypoint + dead-letter), the Deployment,
    // the EventSource, 2 Sensors, the executor.
    assert!(pods.len() >= 9, "found only {} pod specs", pods.len());
    let mut failures = Vec::new();
    for p in &pods {
        let v = restricted_violations(p);
        if v.is_empty() {
            eprintln!("ok: {}", p.origin);
        } else {
            failures.push(format!("{}: {}", p.origin, v.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "not restricted:\n{}",
        failures.join("\n")
    );
}

#[test]
fn the_restricted_checker_rejects_the_old_workflow_pods() {
    // The WorkflowTemplates before issue 19: container-level settings only,
    // no pod-level seccompProfile.
    let c: Value = serde_json::json!({"securityContext": {
        "runAsNonRoot": true, "runAsUser": 65534, "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}});
    let old = Pod {
        origin: "old".into(),
        pod_sc: Value::Null,
        spec: Value::Null,
        containers: vec![("main".into(), c.clone())],
        ours: true,
    };
    let v = restricted_violations(&old);
    assert!(v.iter().any(|m| m.contains("seccompProfile")), "{v:?}");
    let mut escalating = c;
    escalating["securityContext"]["allowPrivilegeEscalation"] = Value::Bool(true);
    let bad = Pod {
        origin: "bad".into(),
        pod_sc: serde_json::json!({"seccompProfile": {"type": "RuntimeDefault"}}),
        spec: serde_json::json!({"hostNetwork": true, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}),
        containers: vec![("main".into(), escalating)],
        ours: true,
    };
    let v = restricted_violations(&bad);
    for want in ["hostNetwork", "hostPath", "allowPrivilegeEscalation"] {
        assert!(
            v.iter().any(|m| m.contains(want)),
            "{want} not reported: {v:?}"
        );
    }
}

// ---------------------------------------------------------------- memory

/// Peak RSS of an indexing process with nothing to index (measured 12-13 MiB
/// on real-scale OFS files, 20 MiB debug build; deploy/README.md).
const BASELINE_MIB: f64 = 32.0;
/// Peak bytes per metadata byte fetched: measured 66 on the worst case,
/// a v1 B-tree (what netCDF-4 writes) of 100,000 uncompressed 480-byte
/// chunks, every one inlined (tests/memory_guard_test.sh checks it).
const BYTES_PER_METADATA_BYTE: f64 = 70.0;
const MARGIN: f64 = 1.25;
/// Peak RSS allowed for `update_model_run`, which reads reference sets, not
/// HDF5: combining 144 sets of 38 KB (a model run) peaked at 50 MiB (debug
/// build); the best series spans more cycles, so 2.5x that.
const UPDATE_PEAK_MIB: f64 = 128.0;

fn quantity_bytes(q: &str) -> f64 {
    let units = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
    ];
    for (u, m) in units {
        if let Some(n) = q.strip_suffix(u) {
            return n.parse::<f64>().unwrap_or_else(|e| panic!("{q}: {e}")) * m;
        }
    }
    q.parse().unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// The `[default: N]` clap prints for `--flag` in `kerchunk-nos VERB --help`.
fn cli_default(verb: &str, flag: &str) -> f64 {
    let out = Command::new(BIN)
        .args([verb, "--help"])
        .output()
        .expect("run --help");
    let text = String::from_utf8_lossy(&out.stdout);
    let after = text
        .split_once(&format!("{flag} <"))
        .unwrap_or_else(|| panic!("`{verb} --help` has no {flag}"))
        .1;
    let d = after
        .split_once("[default: ")
        .and_then(|(_, r)| r.split_once(']'))
        .unwrap_or_else(|| panic!("{flag}: no default"))
        .0;
    d.parse()
        .unwrap_or_else(|e| panic!("{flag} default {d:?}: {e}"))
}

fn flag_value(args: &[String], flag: &str) -> Option<f64> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|e| panic!("{flag} {v}: {e}")))
}

/// Bytes the rule asks for: MARGIN x (baseline + amplification x guard x concurrency).
fn memory_needed(verb: &str, args: &[String]) -> f64 {
    let mib = 1024.0 * 1024.0;
    let indexes = matches!(verb, "extract_single" | "worker" | "backfill");
    let guard = flag_value(args, "--max-metadata-bytes")
        .unwrap_or_else(|| cli_default(verb, "--max-metadata-bytes"));
    let concurrency = if verb == "worker" {
        flag_value(args, "--concurrency").unwrap_or_else(|| cli_default(verb, "--concurrency"))
    } else {
        1.0
    };
    let per_job = if indexes {
        BYTES_PER_METADATA_BYTE * guard
    } else {
        0.0
    };
    let base = if matches!(verb, "update_model_run" | "update-model-run") {
        UPDATE_PEAK_MIB
    } else {
        BASELINE_MIB
    };
    MARGIN * (base * mib + per_job * concurrency)
}

#[test]
fn memory_limits_exceed_the_cli_guards() {
    let docs = load_docs();
    let mut checked = 0;
    for d in &docs {
        let mut containers = Vec::new();
        find_containers(&d.value, "", &[], &mut containers);
        for c in containers {
            let image = c.value["image"].as_str().unwrap_or("");
            if !is_kerchunk_image(image) {
                continue;
            }
            let origin = format!("{} ({})", d.label(), c.path);
            let args = string_list(&c.value["args"], "args");
            let limit = c.value["resources"]["limits"]["memory"]
                .as_str()
                .map(quantity_bytes)
                .unwrap_or_else(|| panic!("{origin}: no memory limit"));
            let request = c.value["resources"]["requests"]["memory"]
                .as_str()
                .map(quantity_bytes)
                .unwrap_or_else(|| panic!("{origin}: no memory request"));
            assert!(request <= limit, "{origin}: request above limit");
            let need = memory_needed(&args[0], &args);
            eprintln!(
                "{origin}: {} limit {:.0} MiB >= needed {:.0} MiB",
                args[0],
                limit / 1048576.0,
                need / 1048576.0
            );
            assert!(
                limit >= need,
                "{origin}: memory limit {:.0} MiB is under {MARGIN} x ({BASELINE_MIB} MiB + \
                 {BYTES_PER_METADATA_BYTE} x --max-metadata-bytes x concurrency) = {:.0} MiB: \
                 large metadata would be OOM-killed before the guard fails cleanly",
                limit / 1048576.0,
                need / 1048576.0
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "checked only {checked} containers");
    // The configuration of issue 19 (256 MiB guard = 256 MiB limit) fails.
    let old = memory_needed("extract_single", &["extract_single".to_string()]);
    assert!(
        old > quantity_bytes("256Mi"),
        "the rule would accept the old limits"
    );
}

// ---------------------------------------------------------------- images

#[test]
fn every_image_is_pinned_to_the_cli_version() {
    let version = env!("CARGO_PKG_VERSION");
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("kerchunk-nos {version}"),
        "`kerchunk-nos --version` is not the crate version"
    );
    let docs = load_docs();
    let mut images = Vec::new();
    for d in &docs {
        let mut containers = Vec::new();
        find_containers(&d.value, "", &[], &mut containers);
        for c in containers {
            images.push((
                d.label(),
                c.value["image"].as_str().unwrap_or("").to_string(),
            ));
        }
        for (n, v) in params(&d.value["spec"]["arguments"]["parameters"]) {
            if n == "image" {
                images.push((
                    format!("{} parameter image", d.label()),
                    v.unwrap_or_default(),
                ));
            }
        }
    }
    let mut pinned = 0;
    for (origin, image) in &images {
        if image == "{{workflow.parameters.image}}" {
            continue; // checked as the parameter's value
        }
        assert!(
            !image.ends_with(":latest"),
            "{origin}: {image} uses :latest"
        );
        if image.contains("kerchunk-nos") {
            assert!(
                image.ends_with(&format!("/kerchunk-nos:{version}")),
                "{origin}: {image} is not pinned to {version} (kerchunk-nos --version)"
            );
            pinned += 1;
        }
    }
    assert!(
        pinned >= 3,
        "found only {pinned} kerchunk-nos image references"
    );
}
