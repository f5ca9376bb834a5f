//! Every manifest under `deploy/` parses, hangs together, and runs only
//! command lines the `kerchunk-nos` CLI accepts.
//!
//! * Every YAML document under `deploy/` is parsed (serde_norway).
//! * Argo wiring: each Sensor dependency names an EventSource event that
//!   exists; each Sensor trigger submits a WorkflowTemplate that exists,
//!   passes only parameters that template declares, and routes the SQS body
//!   (`dataKey: body`) into its `message` parameter. Both seed queues are
//!   consumed. WorkflowTemplates take the image as a parameter, retry only
//!   on exit code 3, and set resource requests and limits.
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
    let err_path = scratch.join(format!("stderr-{}", std::process::id()));
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
    for want in ["extract_single", "update_model_run", "worker"] {
        assert!(
            verbs.contains(want),
            "no manifest runs `{want}` (verbs: {verbs:?})"
        );
    }
    let mut failures = Vec::new();
    for inv in &invocations {
        match check_cli(&inv.args, &inv.env, scratch.path()) {
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
    for (what, args) in bad {
        assert!(
            check_cli(&args, &env, scratch.path()).is_err(),
            "{what}: `{}` was accepted",
            shown(&args)
        );
    }
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
            assert!(
                expr.contains(r#"lastRetry.exitCode == "3""#),
                "{name}: retryStrategy.expression must retry exit code 3 only, got {expr:?}"
            );
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
