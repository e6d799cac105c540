//! `weft serve` following a cluster in the registry, through the real binaries: a pipeline
//! deployed to the cluster in the registry runs on every daemon of that cluster, the
//! registry's lineage lists it with its plugin pinned, a folder pipeline of the same name
//! wins on its machine (and says so), and removing the pipeline from the registry stops it
//! everywhere.
//!
//! Needs the `weft` and `weft-registry` binaries and the plugins (scripts/build-plugins.sh).

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use serde_json::Value;
use weft_tests::kafka::{REGISTRY_TOKEN, Registry, free_port, terminate};
use weft_tests::{plugin, title_schema, titles_jsonl, weft_command};

const CLUSTER: &str = "test-cluster";
const ADMIN: &str = "cluster-test-admin";

fn wait_until(within: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ready()
}

/// A `weft serve` following [`CLUSTER`], its pipelines folder holding the title schema and
/// 50 titles (registry pipelines name them relative to the folder, so each daemon reads and
/// writes its own files).
struct Daemon {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Daemon {
    fn start(dir: &Path, registry: &Registry, local: &[(&str, &str)]) -> Self {
        let folder = dir.join("pipelines");
        std::fs::create_dir_all(&folder).expect("pipelines folder");
        std::fs::copy(title_schema(), folder.join("title.avsc")).expect("schema");
        std::fs::write(folder.join("in.jsonl"), titles_jsonl(50)).expect("input");
        for (name, text) in local {
            std::fs::write(folder.join(format!("{name}.toml")), text).expect("local pipeline");
        }
        let port = free_port();
        std::fs::write(
            dir.join("weftd.toml"),
            format!(
                "listen = \"127.0.0.1:{port}\"\npipelines = \"pipelines\"\ndata_dir = \"data\"\n\
                 admin_tokens = [\"{ADMIN}\"]\n\n[registry]\nurl = \"{}\"\ntoken = \"{REGISTRY_TOKEN}\"\n\n\
                 [cluster]\nname = \"{CLUSTER}\"\n",
                registry.url
            ),
        )
        .expect("weftd.toml");
        let log = std::fs::File::create(dir.join("serve.log")).expect("log");
        let child = weft_command()
            .args(["serve", "--config"])
            .arg(dir.join("weftd.toml"))
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start weft serve");
        let daemon = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir: dir.to_path_buf(),
        };
        let up = wait_until(Duration::from_secs(60), || {
            reqwest::blocking::get(format!("{}/health", daemon.url))
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(up, "weft serve did not come up; log:\n{}", daemon.log());
        daemon
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }

    fn file(&self, relative: &str) -> PathBuf {
        self.dir.join("pipelines").join(relative)
    }

    /// Lines of a JSON-lines file the daemon's pipelines wrote (0 when missing).
    fn lines(&self, relative: &str) -> usize {
        std::fs::read_to_string(self.file(relative))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(20));
    }
}

/// jsonl → filter@^0.1 (from the registry) → jsonl, paths relative to the daemon's folder.
fn definition(condition: &str, out: &str) -> String {
    format!(
        "[[source]]\nkind = \"jsonl\"\npath = \"in.jsonl\"\nschema = \"title.avsc\"\n\n\
         [[processor]]\nplugin = \"filter@^0.1\"\nparams = {{ condition = \"{condition}\" }}\n\n\
         [sink]\nkind = \"jsonl\"\npath = \"{out}\"\n"
    )
}

#[test]
fn daemons_of_a_cluster_run_what_the_registry_deploys_and_report_its_lineage() {
    let registry = Registry::start();
    let client = registry.client();
    client
        .push(std::fs::read(plugin("filter")).expect("filter plugin"))
        .expect("push filter");
    let http = reqwest::blocking::Client::new();
    let pushed: Value = http
        .get(format!(
            "{}/v1/plugins/filter/resolve?req=%5E0.1",
            registry.url
        ))
        .send()
        .and_then(|r| r.json())
        .expect("filter resolves");
    let filter_version = pushed["version"].as_str().expect("version").to_string();

    // B already runs a folder pipeline named `conflict`; it must keep it.
    let local_conflict = definition("year > 2030", "local.jsonl");
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = Daemon::start(dirs[0].path(), &registry, &[]);
    let b = Daemon::start(dirs[1].path(), &registry, &[("conflict", &local_conflict)]);

    // Years 1991..=2040: `year > 2000` keeps 40 of the 50 titles.
    client
        .deploy_pipeline(
            "recent",
            CLUSTER,
            &definition("year > 2000", "recent.jsonl"),
        )
        .expect("deploy recent");
    client
        .deploy_pipeline(
            "conflict",
            CLUSTER,
            &definition("year > 2020", "conflict.jsonl"),
        )
        .expect("deploy conflict");
    for d in [&a, &b] {
        let done = wait_until(Duration::from_secs(120), || d.lines("recent.jsonl") == 40);
        assert!(
            done,
            "{} wrote {} of 40 events; log:\n{}",
            d.dir.display(),
            d.lines("recent.jsonl"),
            d.log()
        );
    }

    // The registry's lineage shows what runs: the plugin pinned to the pushed version, and
    // the lineage reports kept the deployment.
    let lineage_lists_it = wait_until(Duration::from_secs(30), || {
        let users: Value = http
            .get(format!(
                "{}/v1/lineage/plugins/filter/versions/{filter_version}",
                registry.url
            ))
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        users
            .as_array()
            .is_some_and(|u| u.iter().any(|p| p == "recent"))
    });
    assert!(
        lineage_lists_it,
        "lineage never listed `recent`; log A:\n{}",
        a.log()
    );
    let stored = client.pipeline("recent").expect("registered");
    assert_eq!(stored.cluster.as_deref(), Some(CLUSTER));
    assert_eq!(
        stored.definition.as_deref(),
        Some(definition("year > 2000", "recent.jsonl").as_str())
    );
    assert_eq!(stored.processors[0].version, filter_version);

    // `conflict`: A runs the registry's (20 titles after 2020); B keeps its own file and
    // says why it refused the registry's.
    let a_ran = wait_until(Duration::from_secs(60), || a.lines("conflict.jsonl") == 20);
    assert!(
        a_ran,
        "A wrote {} of 20; log:\n{}",
        a.lines("conflict.jsonl"),
        a.log()
    );
    let b_local = wait_until(Duration::from_secs(60), || b.lines("local.jsonl") == 10);
    assert!(
        b_local,
        "B's local pipeline wrote {}; log:\n{}",
        b.lines("local.jsonl"),
        b.log()
    );
    assert_eq!(
        std::fs::read_to_string(b.file("conflict.toml")).expect("B's file"),
        local_conflict,
        "the registry must not overwrite a folder pipeline"
    );
    assert_eq!(b.lines("conflict.jsonl"), 0);
    assert!(
        b.log().contains("the local one wins"),
        "B's log:\n{}",
        b.log()
    );

    // Removed from the registry: stopped and its file removed on every daemon, and only the
    // registry's (B's folder pipeline stays).
    assert!(client.delete_pipeline("recent").expect("delete"));
    assert!(client.delete_pipeline("conflict").expect("delete"));
    for d in [&a, &b] {
        let gone = wait_until(Duration::from_secs(60), || !d.file("recent.toml").exists());
        assert!(
            gone,
            "recent still deployed on {}: log:\n{}",
            d.dir.display(),
            d.log()
        );
    }
    let a_gone = wait_until(Duration::from_secs(30), || {
        !a.file("conflict.toml").exists()
    });
    assert!(a_gone, "A still runs conflict; log:\n{}", a.log());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        std::fs::read_to_string(b.file("conflict.toml")).expect("B's own pipeline stays"),
        local_conflict
    );
}
