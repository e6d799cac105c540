//! End to end: the real `weft-registry` binary on a free port, the real plugins from
//! `plugins/` pushed, resolved and downloaded through the host's blocking client, and a
//! pipeline resolving its plugins there. It crosses the host and the registry, so it lives
//! here rather than in the registry, which does not depend on the host.
//!
//! Needs the compiled plugins and the `weft-registry` binary; fails (does not skip) with the
//! command to build them.

use std::path::PathBuf;

use weft_host::registry::client::{Client, ClientError, Pushed};
use weft_tests::kafka::{REGISTRY_TOKEN as TOKEN, Registry};
use weft_tests::{plugin, title_schema};

const PLUGINS: [&str; 4] = ["filter", "project", "mask", "enrich"];

/// The compiled plugin components; panics with the build command if any is missing.
fn plugin_files() -> Vec<(String, PathBuf)> {
    PLUGINS.iter().map(|p| (p.to_string(), plugin(p))).collect()
}

#[test]
fn real_plugins_push_resolve_and_download_through_the_binary() {
    let files = plugin_files();
    let registry = Registry::start();
    let client = Client::new(&registry.url, Some(TOKEN.into())).expect("client");
    let anonymous = Client::new(&registry.url, None).expect("client");
    let runtime = weft_runtime::Runtime::new(weft_runtime::RuntimeOptions { cache_dir: None })
        .expect("runtime");

    for (name, file) in &files {
        let bytes = std::fs::read(file).expect("read plugin");
        // Writes need the token.
        let err = anonymous.push(bytes.clone()).expect_err("no token");
        assert_eq!(err.error_code(), Some(40101), "{err}");

        let pushed = client.push(bytes.clone()).expect("push");
        let Pushed::Created(meta) = &pushed else {
            panic!("first push of {name} must create: {pushed:?}");
        };
        assert_eq!(&meta.manifest.name, name);
        assert_eq!(meta.size, bytes.len() as u64);
        // What the registry read from describe() is, field for field, what the host reads.
        let loaded = runtime.load_bytes(&bytes).expect("the host loads it");
        assert_eq!(meta.manifest, *loaded.manifest());
        // The same bytes again: idempotent.
        assert!(matches!(
            client.push(bytes.clone()),
            Ok(Pushed::Unchanged(_))
        ));

        let major = semver::Version::parse(&meta.manifest.version)
            .expect("semver")
            .major;
        let resolved = anonymous
            .resolve(name, &format!("^{major}"))
            .expect("resolve");
        assert_eq!(resolved.manifest.version, meta.manifest.version);
        let shown = anonymous.show(name, None).expect("show");
        assert_eq!(shown.len(), 1);
        assert_eq!(shown[0], *meta);
        let downloaded = anonymous
            .download(name, &meta.manifest.version)
            .expect("download");
        assert_eq!(downloaded, bytes);
        // Declared schemas came out of describe() and parse as Avro.
        for schema in meta
            .manifest
            .input_schema
            .iter()
            .chain(&meta.manifest.output_schema)
        {
            apache_avro::Schema::parse_str(schema).expect("declared schema parses");
        }
    }
    let list = anonymous.list().expect("list");
    let mut names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
    names.sort();
    let mut expected = PLUGINS.to_vec();
    expected.sort();
    assert_eq!(names, expected);

    match anonymous.resolve("mask", "^99") {
        Err(ClientError::Api { error_code, .. }) => assert_eq!(error_code, 40412),
        other => panic!("expected no match, got {other:?}"),
    }

    // Not a component: refused with a reason.
    let err = client
        .push(b"\0asm\x01\0\0\0".to_vec())
        .expect_err("core module");
    assert_eq!(err.error_code(), Some(42210), "{err}");

    // Confluent calls over the wire.
    let schema = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}"#;
    let id = client.register("t-value", schema).expect("register");
    assert_eq!(client.register("other-value", schema).expect("again"), id);
    let back: serde_json::Value =
        serde_json::from_str(&anonymous.schema_by_id(id).expect("by id")).expect("json");
    assert_eq!(back["name"], "T");
    let err = anonymous.schema_by_id(id + 100).expect_err("unknown id");
    assert_eq!(err.error_code(), Some(40403));
}

#[test]
fn openapi_and_health_are_served_by_the_binary() {
    let registry = Registry::start();
    let http = reqwest::blocking::Client::new();
    let health: serde_json::Value = http
        .get(format!("{}/health", registry.url))
        .send()
        .and_then(|r| r.json())
        .expect("health");
    assert_eq!(health["status"], "ok");
    let doc: serde_json::Value = http
        .get(format!("{}/openapi.json", registry.url))
        .send()
        .and_then(|r| r.json())
        .expect("openapi");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')));
    assert!(doc["paths"]["/v1/plugins"].is_object());
}

/// A pipeline whose processors are `name@requirement` references: resolved through the real
/// registry, cached by content, and started from the cache once the registry is gone.
#[test]
fn a_pipeline_resolves_its_plugins_from_the_registry_and_starts_offline_from_the_cache() {
    use weft_host::config;
    use weft_host::pipeline::{Pipeline, RunOptions};
    use weft_host::registry::RegistryResolver;
    use weft_runtime::{Runtime, RuntimeOptions};

    let files = plugin_files();
    let registry = Registry::start();
    let client = Client::new(&registry.url, Some(TOKEN.into())).expect("client");
    for (_, file) in &files {
        client
            .push(std::fs::read(file).expect("plugin bytes"))
            .expect("push");
    }

    let work = tempfile::tempdir().expect("tempdir");
    let input: String = (1..=6)
        .map(|i| {
            format!(
                "{{\"id\":{i},\"title\":\"T {i}\",\"kind\":\"book\",\"year\":{},\"rating\":null,\"genres\":[],\"owner\":{{\"name\":\"A\",\"email\":\"a{i}@x\"}}}}\n",
                1995 + i
            )
        })
        .collect();
    std::fs::write(work.path().join("in.jsonl"), input).expect("input");
    let pipeline = format!(
        r#"[registry]
url = "{url}"

[[source]]
kind = "jsonl"
path = "in.jsonl"
schema = "{schema}"

[[processor]]
plugin = "filter@^0.1"
params = {{ condition = "year >= 2000" }}

[[processor]]
plugin = "enrich@=0.1.0"

[[processor]]
plugin = "project@0"
params = {{ keep = "id,decade" }}

[sink]
kind = "jsonl"
path = "out.jsonl"
"#,
        url = registry.url,
        schema = title_schema().display(),
    );
    let pipeline_path = work.path().join("pipeline.toml");
    std::fs::write(&pipeline_path, pipeline).expect("pipeline");
    let cache = work.path().join("cache");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(work.path().join("compiled")),
    })
    .expect("runtime");
    let run = |resolver: &RegistryResolver| -> Result<String, String> {
        let config = config::load_file(&pipeline_path).map_err(|e| e.to_string())?;
        let pipeline = Pipeline::build(config, &runtime, resolver).map_err(|e| e.to_string())?;
        pipeline
            .run(&RunOptions::default())
            .map_err(|e| e.to_string())?;
        Ok(std::fs::read_to_string(work.path().join("out.jsonl")).expect("output"))
    };
    let expected = "{\"id\":5,\"decade\":2000}\n{\"id\":6,\"decade\":2000}\n";

    let online = RegistryResolver::new(client.clone(), &cache);
    assert_eq!(run(&online).expect("runs from the registry"), expected);

    // The registry goes away: the same pipeline starts from the content-addressed cache.
    drop(registry);
    let offline = RegistryResolver::new(client.clone(), &cache);
    assert_eq!(run(&offline).expect("runs from the cache"), expected);

    // A tampered cache entry is refused, not loaded.
    let sha = std::fs::read_to_string(cache.join("plugins/index/enrich/0.1.0")).expect("indexed");
    let blob = cache.join(format!("plugins/sha256/{}.wasm", sha.trim()));
    let mut bytes = std::fs::read(&blob).expect("blob");
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).expect("tamper");
    let err = run(&offline).expect_err("a corrupt cache entry must not load");
    assert!(
        err.contains("cached enrich@0.1.0 is missing or corrupt (sha256 mismatch)"),
        "{err}"
    );
}
