//! The PIPELINES guard end to end: the real `filter` plugin's chain says which field its
//! condition reads, the daemon's lineage report carries it to the real `weft-registry`
//! binary, and a subject configured PIPELINES then refuses a schema dropping that field and
//! takes one dropping a field nobody reads. Also the field lineage route and a canary's
//! annotation through the host's client; and the same from a real `weft serve`'s report.
//!
//! Needs the compiled plugins, the `weft-registry` binary and (the daemon's test) the
//! broker; fails (does not skip) with the command to build or install what is missing.

use std::time::Duration;
use weft_host::config;
use weft_host::pipeline::{LocalOnly, Pipeline};
use weft_host::registry::client::{Annotation, Client, ClientError, Pushed};
use weft_host::registry::pipelines::{Endpoint, PluginRef};
use weft_host::serve::registry_sync::{FieldFlow, lineage};

use weft_tests::kafka::{Broker, REGISTRY_TOKEN as TOKEN, Registry, Storage};
use weft_tests::serve::{Daemon, wait_until};
use weft_tests::{Workdir, plugin, runtime};

const V1: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"year","type":"int"},{"name":"note","type":"string","default":""}]}"#;
const WITHOUT_YEAR: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"note","type":"string","default":""}]}"#;
const WITHOUT_NOTE: &str = r#"{"type":"record","name":"Order","fields":[{"name":"id","type":"long"},{"name":"year","type":"int"}]}"#;

#[test]
fn a_pipelines_subject_refuses_dropping_a_field_a_running_filter_reads_and_takes_an_unread_one() {
    let registry = Registry::start();
    let client = Client::new(&registry.url, Some(TOKEN.into())).expect("client");
    let bytes = std::fs::read(plugin("filter")).expect("the filter plugin is built");
    let pushed = client.push(bytes).expect("push filter");
    let Pushed::Created(meta) = pushed else {
        panic!("a fresh registry creates the version: {pushed:?}");
    };
    let version = meta.manifest.version.clone();
    client.register("orders-value", V1).expect("v1");

    // The chain a daemon runs: what the filter's configure found its condition reads.
    let work = Workdir::new();
    let schema = work.write("order.avsc", V1);
    let file = work.write(
        "recent.toml",
        &format!(
            "[[source]]\nkind = \"generate\"\nschema = {schema:?}\ncount = 1\n\n\
             [[processor]]\nplugin = {filter:?}\nparams = {{ condition = \"year >= 2000\" }}\n\n\
             [sink]\nkind = \"null\"\n",
            schema = schema.display().to_string(),
            filter = plugin("filter").display().to_string(),
        ),
    );
    let config = config::load_file(&file).expect("pipeline file");
    let built = Pipeline::build(config.clone(), &runtime(), &LocalOnly).expect("chain builds");
    let flow = FieldFlow::of(built.chain());
    assert_eq!(flow.reads, vec![Some(vec!["year".to_string()])]);
    assert_eq!(
        flow.passes,
        Some(vec!["id".to_string(), "note".into(), "year".into()])
    );
    // Reported as the daemon reports it, for a pipeline reading `orders` into `recent` with
    // the registry's filter (a local `.wasm` stage is not the registry's, so it is pinned by
    // hand here).
    let mut report = lineage("recent", &config, &[format!("filter@{version}")], &flow);
    assert!(report.processors.is_empty(), "local plugins are left out");
    report.processors = vec![PluginRef {
        name: "filter".into(),
        version: version.clone(),
        reads: flow.reads[0].clone(),
    }];
    report.sources = vec![Endpoint {
        topic: "orders".into(),
        subject: None,
    }];
    report.sinks = vec![Endpoint {
        topic: "recent".into(),
        subject: None,
    }];
    let stored = client.report_pipeline(&report).expect("lineage report");
    assert_eq!(stored.processors[0].reads, Some(vec!["year".to_string()]));

    guard_subject(&registry.url, "orders-value");

    let refused = client
        .register("orders-value", WITHOUT_YEAR)
        .expect_err("dropping the filter's field is refused");
    let ClientError::Api {
        status,
        error_code,
        message,
    } = &refused
    else {
        panic!("an API error: {refused}");
    };
    assert_eq!((*status, *error_code), (409, 409), "{message}");
    assert!(
        message.contains(&format!(
            "pipeline recent: stage filter@{version} (#1) reads field \"year\" from topic orders: removed"
        )),
        "{message}"
    );
    let id = client
        .register("orders-value", WITHOUT_NOTE)
        .expect("dropping a field no stage reads is taken");
    assert_eq!(client.latest("orders-value").expect("latest").0, id);

    let readers = client
        .field_lineage("orders-value", "year")
        .expect("field lineage");
    assert_eq!(readers.readers.len(), 1, "{readers:?}");
    assert_eq!(readers.readers[0].pipeline, "recent");
    assert_eq!(readers.readers[0].stage, format!("filter@{version}"));
    assert!(
        client
            .field_lineage("orders-value", "id")
            .expect("field lineage")
            .readers
            .is_empty()
    );

    // A canary's rollback note, as the daemon sends it.
    let note = Annotation {
        kind: Annotation::ROLLED_BACK.into(),
        pipeline: Some("recent".into()),
        reason: "trapped on 6 of its first 200 events".into(),
        at: None,
    };
    let annotated = client
        .annotate("filter", &version, &note)
        .expect("annotate");
    assert_eq!(annotated.annotations.len(), 1);
    let shown = client.show("filter", Some(&version)).expect("show");
    let kept = &shown[0].annotations[0];
    assert_eq!(
        (kept.kind.as_str(), kept.pipeline.as_deref()),
        ("rolled-back", Some("recent"))
    );
    assert!(kept.at.is_some(), "the registry stamps it: {kept:?}");
    let anonymous = Client::new(&registry.url, None).expect("client");
    let err = anonymous
        .annotate("filter", &version, &note)
        .expect_err("needs the token");
    assert_eq!(err.error_code(), Some(40101), "{err}");
}

/// The same through a real `weft serve`: the daemon runs a Kafka pipeline with the
/// registry's filter and reports, by itself, the field its condition reads and what reaches
/// the sink; the guard then works from that report.
#[test]
fn a_running_daemon_reports_what_its_stages_read_and_the_guard_uses_it() {
    let broker = Broker::start(Storage::Sqlite);
    let registry = Registry::start();
    let brokers = broker.address();
    for topic in ["gd-in", "gd-out"] {
        broker.create_topic(topic, 1);
    }
    let client = Client::new(&registry.url, Some(TOKEN.into())).expect("client");
    let bytes = std::fs::read(plugin("filter")).expect("the filter plugin is built");
    let version = client
        .push(bytes)
        .expect("push")
        .meta()
        .manifest
        .version
        .clone();
    client.register("gd-in-value", V1).expect("v1");

    let work = tempfile::tempdir().expect("temp dir");
    let daemon = Daemon::start(
        work.path(),
        &format!(
            "[registry]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\n\n[kafka]\nbrokers = \"{brokers}\"\n",
            registry.url
        ),
    );
    daemon.put_pipeline(
        "guarded",
        &format!(
            "[[source]]\nkind = \"kafka\"\ntopics = [\"gd-in\"]\ngroup = \"guarded\"\n\n\
             [[processor]]\nplugin = \"filter@={version}\"\nparams = {{ condition = \"year > 1000\" }}\n\n\
             [sink]\nkind = \"kafka\"\ntopic = \"gd-out\"\nregister_schema = true\n"
        ),
    );
    let mut reported = None;
    let arrived = wait_until(Duration::from_secs(120), || {
        reported = client.pipeline("guarded").ok();
        reported
            .as_ref()
            .is_some_and(|p| p.processors.first().is_some_and(|s| s.reads.is_some()))
    });
    assert!(
        arrived,
        "the daemon's report never said what its stage reads: {reported:?}\nlog:\n{}",
        daemon.log()
    );
    let reported = reported.expect("reported");
    assert_eq!(reported.processors[0].reads, Some(vec!["year".to_string()]));
    assert_eq!(
        reported.passes,
        Some(vec!["id".to_string(), "note".into(), "year".into()])
    );

    let lineage = client
        .field_lineage("gd-in-value", "year")
        .expect("field lineage");
    assert_eq!(lineage.readers.len(), 1, "{lineage:?}");
    assert_eq!(lineage.readers[0].topic, "gd-in");

    guard_subject(&registry.url, "gd-in-value");
    let refused = client
        .register("gd-in-value", WITHOUT_YEAR)
        .expect_err("dropping the field the running filter reads is refused");
    assert!(
        refused.to_string().contains(&format!(
            "pipeline guarded: stage filter@{version} (#1) reads field \"year\" from topic gd-in: removed"
        )),
        "{refused}"
    );
    client
        .register("gd-in-value", WITHOUT_NOTE)
        .expect("dropping a field no stage reads is taken");
}

/// Pipelines already in the folder when `weft serve` starts have no chain yet when the sync
/// starts (one still building, one that never builds): their first report used to go out
/// with no stages (and, with no Kafka topic either, the registry refused it, a spurious
/// warning). Each is reported once its chain runs, with its stage, and nothing is refused.
#[test]
fn a_pipeline_of_the_folder_is_reported_once_its_chain_runs_and_never_refused() {
    let registry = Registry::start();
    let client = Client::new(&registry.url, Some(TOKEN.into())).expect("client");
    let bytes = std::fs::read(plugin("filter")).expect("the filter plugin is built");
    let version = client
        .push(bytes)
        .expect("push")
        .meta()
        .manifest
        .version
        .clone();
    let work = tempfile::tempdir().expect("temp dir");
    let schema = work.path().join("order.avsc");
    std::fs::write(&schema, V1).expect("schema");
    std::fs::create_dir_all(work.path().join("pipelines")).expect("pipelines folder");
    std::fs::write(
        work.path().join("pipelines/booted.toml"),
        format!(
            "[[source]]\nkind = \"generate\"\nschema = {schema:?}\ncount = 10\n\n\
             [[processor]]\nplugin = \"filter@={version}\"\nparams = {{ condition = \"year > 1000\" }}\n\n\
             [sink]\nkind = \"null\"\n",
            schema = schema.display().to_string(),
        ),
    )
    .expect("pipeline file");
    // Never builds (no such version): nothing of it runs, so nothing is reported. Its name
    // sorts first, so its report would be sent (and refused) before `booted`'s.
    std::fs::write(
        work.path().join("pipelines/a-broken.toml"),
        format!(
            "[[source]]\nkind = \"generate\"\nschema = {schema:?}\ncount = 10\n\n\
             [[processor]]\nplugin = \"filter@=99.0.0\"\n\n[sink]\nkind = \"null\"\n",
            schema = schema.display().to_string(),
        ),
    )
    .expect("pipeline file");
    let daemon = Daemon::start(
        work.path(),
        &format!(
            "[registry]\nurl = \"{}\"\ntoken = \"{TOKEN}\"\n",
            registry.url
        ),
    );
    let mut reported = None;
    let arrived = wait_until(Duration::from_secs(120), || {
        reported = client.pipeline("booted").ok();
        reported.as_ref().is_some_and(|p| !p.processors.is_empty())
    });
    assert!(
        arrived,
        "the daemon never reported the pipeline with its stage: {reported:?}\nlog:\n{}",
        daemon.log()
    );
    assert_eq!(
        reported.expect("reported").processors[0].reads,
        Some(vec!["year".to_string()])
    );
    let log = daemon.log();
    assert!(
        !log.contains("refused the lineage report"),
        "a report was refused:\n{log}"
    );
}

/// Sets `subject`'s compatibility level to PIPELINES through the registry's config route.
fn guard_subject(registry_url: &str, subject: &str) {
    let level = reqwest::blocking::Client::new()
        .put(format!("{registry_url}/config/{subject}"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"compatibility": "PIPELINES"}))
        .send()
        .expect("set the level");
    assert_eq!(
        level.status().as_u16(),
        200,
        "PIPELINES level for {subject}"
    );
}
