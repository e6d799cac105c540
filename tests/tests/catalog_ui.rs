//! The catalog (`/ui`) in a real browser: the real `weft-registry` binary with the real
//! plugins pushed and schemas registered, driven in headless Chromium through chromedriver
//! (WebDriver, the `fantoccini` crate). It checks what a person would: search finds a field by
//! its name, a diff shows the added field, the lineage graph links topic → pipeline → plugin,
//! a pipeline created from the form is in `GET /v1/pipelines`, an invalid one shows the
//! server's own error, and a `<script>` in a schema doc stays text.
//!
//! Saves screenshots of the main pages to `docs/screenshots/` (the README shows them).
//! Needs Debian's `chromium` and `chromium-driver` (`scripts/setup.sh --kafka` installs them):
//! fails, never skips, without them.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use weft_tests::kafka::{REGISTRY_TOKEN as TOKEN, Registry, binary, free_port, terminate};
use weft_tests::{plugin, workspace};

/// How long a page may take to show what the test waits for (generous: 2 shared cores).
const PATIENCE: Duration = Duration::from_secs(30);

const ORDERS_V1: &str = r#"{"type":"record","name":"Order","namespace":"shop","doc":"A customer's order",
  "fields":[{"name":"id","type":"long","doc":"order number"},
            {"name":"amount","type":"double","doc":"total, in euros"},
            {"name":"customer","type":"string"}]}"#;
const ORDERS_V2: &str = r#"{"type":"record","name":"Order","namespace":"shop","doc":"A customer's order",
  "fields":[{"name":"id","type":"long","doc":"order number"},
            {"name":"amount","type":"double","doc":"total, in euros"},
            {"name":"customer","type":"string"},
            {"name":"customer_email","type":["null","string"],"default":null,"doc":"where receipts go"}]}"#;
const EVIL_DOC: &str = "<script>window.pwned=1</script>";

/// An executable on PATH, or a failure naming the install command.
fn installed(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the catalog's browser test needs Chromium and its \
                 WebDriver (Debian: `apt-get install chromium chromium-driver`, which \
                 `scripts/setup.sh --kafka` runs)"
            )
        })
}

/// chromedriver on a free port, stopped (and its browser with it) on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let driver = installed("chromedriver");
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        // Owned by the guard from here: a panic below still stops it.
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
                && r.status().is_success()
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not answer on {} within 30s", driver.url);
    }

    async fn browser(&self) -> Client {
        let chromium = installed("chromium");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1200,760", "--hide-scrollbars"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a headless Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if terminate(&mut self.child, Duration::from_secs(5)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The registry's JSON API, as the test's own client (not the browser).
struct Api {
    http: reqwest::Client,
    url: String,
}

impl Api {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let response = req.bearer_auth(TOKEN).send().await?;
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, body))
    }

    async fn push(&self, name: &str) -> Result<Value> {
        let bytes = std::fs::read(plugin(name))?;
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/v1/plugins", self.url))
                    .body(bytes),
            )
            .await?;
        ensure!(status == 201, "push {name}: {status} {body}");
        Ok(body)
    }

    async fn register(&self, subject: &str, schema: &str) -> Result<()> {
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/subjects/{subject}/versions", self.url))
                    .json(&json!({ "schema": schema })),
            )
            .await?;
        ensure!(status == 200, "register {subject}: {status} {body}");
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_in_a_real_browser() {
    // Missing browser pieces fail here, before anything starts.
    installed("chromium");
    let driver = Driver::start().await;
    let registry = Registry::start();
    let api = Api {
        http: reqwest::Client::new(),
        url: registry.url.clone(),
    };
    let browser = driver.browser().await;
    let closed = ClosedRegistry::start();
    let mut outcome = scenario(&browser, &api).await;
    if outcome.is_ok() {
        outcome = reads_need_the_token(&browser, &closed.url).await;
    }
    // Close the session (and its Chromium) whatever happened, then report.
    let _ = browser.close().await;
    outcome.expect("catalog scenario");
}

async fn scenario(browser: &Client, api: &Api) -> Result<()> {
    let mut pushed = std::collections::BTreeMap::new();
    for name in ["filter", "project", "mask", "enrich"] {
        pushed.insert(name, api.push(name).await?);
    }
    let version = |name: &str| {
        pushed[name]["version"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    api.register("orders-value", ORDERS_V1).await?;
    api.register("orders-value", ORDERS_V2).await?;
    let evil = format!(
        r#"{{"type":"record","name":"Note","fields":[{{"name":"text","type":"string","doc":{}}}]}}"#,
        serde_json::to_string(EVIL_DOC)?
    );
    api.register("notes-value", &evil).await?;
    // A pipeline registered for lineage, as a daemon reports what it runs.
    // Pipelines registered for lineage, as daemons report what they run: with the fields
    // each stage reads and those passed on to the sink (field-level lineage).
    let clean = json!({
        "name": "orders-clean",
        "description": "drops test orders",
        "sources": [{"topic": "orders"}],
        "processors": [{"name": "filter", "version": version("filter"), "reads": ["amount"]}],
        "sinks": [{"topic": "orders-clean"}],
        "passes": ["id", "amount", "customer"],
    });
    let audit = json!({
        "name": "orders-audit",
        "sources": [{"topic": "orders-clean"}],
        "processors": [{"name": "mask", "version": version("mask"), "reads": ["customer"]}],
        "sinks": [{"topic": "orders-audited"}],
    });
    for lineage in [clean, audit] {
        let name = lineage["name"].as_str().unwrap_or_default().to_string();
        let (status, body) = api
            .send(
                api.http
                    .put(format!("{}/v1/pipelines/{name}", api.url))
                    .json(&lineage),
            )
            .await?;
        ensure!(status == 201, "register {name}: {status} {body}");
    }
    // A daemon's canary rolled a version back: the version page shows it.
    let (status, body) = api
        .send(
            api.http
                .post(format!(
                    "{}/v1/plugins/filter/versions/{}/annotations",
                    api.url,
                    version("filter")
                ))
                .json(&json!({"kind": "rolled-back", "pipeline": "orders-clean",
                              "reason": "trapped on 6 of its first 200 events"})),
        )
        .await?;
    ensure!((200..300).contains(&status), "annotate: {status} {body}");
    let ui = format!("{}/ui", api.url);

    // Data discovery: a field found by its name from the search box in the header.
    browser.goto(&ui).await?;
    let search = browser
        .find(Locator::Css("header form.search input"))
        .await?;
    search.send_keys("email\n").await?;
    let row = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#subjects tbody tr"))
        .await?;
    let text = row.text().await?;
    ensure!(
        text.contains("orders-value") && text.contains("customer_email"),
        "search for `email` shows {text:?}"
    );
    ensure!(
        browser
            .find_all(Locator::Css("#subjects tbody tr"))
            .await?
            .len()
            == 1,
        "only orders-value has an email field"
    );
    shot(browser, "subjects-search").await?;

    // A subject: its fields, its level, who reads it; then v1 → v2 shows the added field.
    row.find(Locator::Css("a")).await?.click().await?;
    let level = wait_text(browser, "#level").await?;
    ensure!(level.starts_with("BACKWARD"), "level {level:?}");
    let readers = wait_text(browser, "#readers").await?;
    ensure!(readers.contains("orders-clean"), "readers {readers:?}");
    // Field-level lineage: the filter reads `amount` here; the mask reads `customer`
    // downstream, after orders-clean passed it on.
    let amount = wait_text(browser, r#"tr[data-field="amount"]"#).await?;
    ensure!(
        amount.contains(&format!("orders-clean · filter@{}", version("filter"))),
        "amount row {amount:?}"
    );
    let customer = wait_text(browser, r#"tr[data-field="customer"]"#).await?;
    ensure!(
        customer.contains(&format!(
            "orders-audit · mask@{} (via orders-clean)",
            version("mask")
        )),
        "customer row {customer:?}"
    );
    let id = wait_text(browser, r#"tr[data-field="id"]"#).await?;
    ensure!(!id.contains("orders-"), "nobody reads id: {id:?}");
    shot(browser, "subject").await?;
    browser
        .find(Locator::Css("#diff-from"))
        .await?
        .select_by_value("1")
        .await?;
    browser
        .find(Locator::Css("#diff-to"))
        .await?
        .select_by_value("2")
        .await?;
    browser
        .find(Locator::Css("#diff-form button"))
        .await?
        .click()
        .await?;
    let summary = wait_text(browser, "#diff-summary").await?;
    ensure!(
        summary == "1 added, 0 removed, 0 changed",
        "diff summary {summary:?}"
    );
    let added = browser.find(Locator::Css("tr.added")).await?.text().await?;
    ensure!(added.contains("customer_email"), "added row {added:?}");
    shot(browser, "subject-diff").await?;

    // Lineage: the topic box links to its subject, the pipeline box to the pipeline, whose
    // stage links to the plugin version.
    browser.goto(&format!("{ui}/lineage")).await?;
    let topic = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(r#"a.node.topic[data-label="orders"]"#))
        .await?;
    ensure!(
        topic.attr("href").await?.as_deref() == Some("/ui/subjects/orders-value"),
        "topic box link"
    );
    let fields = wait_text(browser, "#field-lineage").await?;
    ensure!(
        fields.contains("filter@") && fields.contains("amount") && fields.contains("customer"),
        "field lineage table {fields:?}"
    );
    shot(browser, "lineage").await?;
    browser
        .find(Locator::Css(
            r#"a.node.pipeline[data-label="orders-clean"]"#,
        ))
        .await?
        .click()
        .await?;
    let stage = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#stages a.plugin"))
        .await?;
    ensure!(
        browser.current_url().await?.path() == "/ui/pipelines/orders-clean",
        "the pipeline box opens the pipeline"
    );
    stage.click().await?;
    let sha = wait_text(browser, "#sha256").await?;
    ensure!(
        browser.current_url().await?.path() == format!("/ui/plugins/filter/{}", version("filter")),
        "the stage opens its plugin version"
    );
    ensure!(sha == pushed["filter"]["sha256"], "sha256 shown {sha:?}");
    let notes = wait_text(browser, "#annotations").await?;
    ensure!(
        notes.contains("rolled-back in orders-clean: trapped on 6 of its first 200 events"),
        "annotations {notes:?}"
    );
    // The download link serves the pushed bytes.
    let href = browser
        .find(Locator::Css("#download"))
        .await?
        .attr("href")
        .await?
        .ok_or_else(|| anyhow!("no download link"))?;
    let bytes = api
        .http
        .get(format!("{}{href}", api.url))
        .send()
        .await?
        .bytes()
        .await?;
    ensure!(
        bytes.as_ref() == std::fs::read(plugin("filter"))?,
        "downloaded bytes differ"
    );
    shot(browser, "plugin-version").await?;

    // A pipeline from the form: validated as typed, registered with the token asked once.
    browser.goto(&format!("{ui}/create")).await?;
    let definition = format!(
        "[[source]]\nkind = \"kafka\"\nbrokers = \"localhost:9092\"\ntopics = [\"orders\"]\n\
         group = \"orders-masked\"\n\n[[processor]]\nplugin = \"mask@^{}\"\n\
         [processor.params]\nfields = [\"customer\"]\n\n[sink]\nkind = \"kafka\"\n\
         brokers = \"localhost:9092\"\ntopic = \"orders-masked\"\n",
        version("mask").split('.').next().unwrap_or("1")
    );
    fill(browser, "#pf-name", "orders-masked").await?;
    fill(browser, "#pf-description", "customers masked").await?;
    fill(browser, "#pf-definition", &definition).await?;
    // Answers to partial text may show first; the one to the whole text says it is valid.
    if browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#validation p.ok"))
        .await
        .is_err()
    {
        let said = browser
            .find(Locator::Css("#validation"))
            .await?
            .text()
            .await?;
        return Err(anyhow!("the form never said valid; it says {said:?}"));
    }
    browser.execute("window.scrollTo(0, 0)", vec![]).await?;
    shot(browser, "create-pipeline").await?;
    browser
        .find(Locator::Css("#pf-submit"))
        .await?
        .click()
        .await?;
    // No token yet: the form asks for it.
    let asked = wait_text(browser, "#form-error").await?;
    ensure!(asked.contains("token"), "asked {asked:?}");
    fill(browser, "#pf-token", TOKEN).await?;
    browser
        .find(Locator::Css("#pf-submit"))
        .await?
        .click()
        .await?;
    let result = wait_text(browser, "#form-result").await?;
    ensure!(result == "Registered orders-masked", "result {result:?}");
    let (_, listed) = api
        .send(api.http.get(format!("{}/v1/pipelines", api.url)))
        .await?;
    let names: Vec<&str> = listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["name"].as_str())
        .collect();
    ensure!(
        names.contains(&"orders-masked"),
        "GET /v1/pipelines lists {names:?}"
    );
    let stored = listed
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "orders-masked")
        .cloned()
        .unwrap_or_default();
    ensure!(stored["processors"][0]["name"] == "mask", "stored {stored}");
    ensure!(
        stored["definition"] == definition.as_str(),
        "definition kept verbatim"
    );

    // An invalid one: the server's own message, word for word; nothing registered. The
    // token is now kept for the session: not asked again.
    let bad = definition.replace("mask@^", "nosuch@^");
    browser.refresh().await?;
    ensure!(
        !browser
            .find(Locator::Css("#token-row"))
            .await?
            .is_displayed()
            .await?,
        "the token is asked once"
    );
    fill(browser, "#pf-name", "bad-one").await?;
    fill(browser, "#pf-definition", &bad).await?;
    browser
        .find(Locator::Css("#pf-submit"))
        .await?
        .click()
        .await?;
    let shown = wait_text(browser, "#form-error").await?;
    let (status, expected) = api
        .send(
            api.http
                .put(format!("{}/v1/pipelines/bad-one", api.url))
                .json(&json!({"name": "bad-one", "description": "", "definition": bad})),
        )
        .await?;
    ensure!(status == 422, "the API refuses it too: {status} {expected}");
    ensure!(
        shown == expected["message"],
        "form shows {shown:?}, the API says {}",
        expected["message"]
    );
    ensure!(
        shown.contains("nosuch"),
        "the error names the plugin: {shown:?}"
    );
    let (status, _) = api
        .send(api.http.get(format!("{}/v1/pipelines/bad-one", api.url)))
        .await?;
    ensure!(status == 404, "the invalid pipeline was not registered");

    // A doc holding a script is text on the page, never run.
    browser.goto(&format!("{ui}/subjects/notes-value")).await?;
    let doc = wait_text(browser, "tr[data-field=\"text\"] td.doc").await?;
    ensure!(doc == EVIL_DOC, "the doc shows as {doc:?}");
    let ran = browser
        .execute("return window.pwned !== undefined", vec![])
        .await?;
    ensure!(ran == Value::Bool(false), "the doc's script ran");

    // The pipelines list shows both, then the overview.
    browser.goto(&format!("{ui}/pipelines")).await?;
    let list = wait_text(browser, "#pipelines").await?;
    ensure!(
        list.contains("orders-clean") && list.contains("orders-masked"),
        "list {list:?}"
    );
    shot(browser, "pipelines").await?;
    browser.goto(&format!("{ui}/plugins")).await?;
    let plugins = wait_text(browser, "#plugins").await?;
    for name in pushed.keys() {
        ensure!(plugins.contains(name), "plugin list lacks {name}");
    }
    shot(browser, "plugins").await?;
    Ok(())
}

/// A registry whose reads need the token too (`--auth-reads true`), stopped on drop.
struct ClosedRegistry {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl ClosedRegistry {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(binary("weft-registry", "weft-registry"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--token",
                TOKEN,
                "--auth-reads",
                "true",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start weft-registry");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        let _ = BufReader::new(stdout).read_line(&mut line);
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .map(str::to_string);
        let mut registry = Self {
            child,
            url: String::new(),
            _dir: dir,
        };
        registry.url = url.unwrap_or_else(|| panic!("weft-registry printed {line:?}"));
        registry
    }
}

impl Drop for ClosedRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// With `auth_reads`, a catalog page sends the browser to the token page, and the token,
/// entered once, opens it (the page's cookie; the tab's sessionStorage).
async fn reads_need_the_token(browser: &Client, url: &str) -> Result<()> {
    browser.goto(&format!("{url}/ui/subjects?q=email")).await?;
    let input = browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#token-input"))
        .await?;
    ensure!(
        browser.current_url().await?.path() == "/ui/token",
        "a closed catalog asks for the token"
    );
    input.send_keys(TOKEN).await?;
    browser
        .find(Locator::Css("#token-form button[type=submit]"))
        .await?
        .click()
        .await?;
    browser
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("#subject-search"))
        .await?;
    let back = browser.current_url().await?;
    ensure!(
        back.path() == "/ui/subjects" && back.query() == Some("q=email"),
        "back where the reader was going: {back}"
    );
    Ok(())
}

/// Replaces an input's text (as typing would, so the page's input events fire).
async fn fill(browser: &Client, css: &str, text: &str) -> Result<()> {
    let field = browser.find(Locator::Css(css)).await?;
    field.clear().await?;
    field.send_keys(text).await?;
    Ok(())
}

/// The text of an element once it is shown and has some.
async fn wait_text(browser: &Client, css: &str) -> Result<String> {
    for _ in 0..300 {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && element.is_displayed().await.unwrap_or(false)
        {
            let text = element.text().await?;
            if !text.trim().is_empty() {
                return Ok(text.trim().to_string());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let url = browser.current_url().await?;
    Err(anyhow!("{css} never showed text on {url}"))
}

/// Saves the page as docs/screenshots/NAME.png, for the README.
async fn shot(browser: &Client, name: &str) -> Result<()> {
    let png = browser.screenshot().await?;
    let dir = workspace().join("docs/screenshots");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))
}
