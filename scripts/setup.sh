#!/usr/bin/env bash
# Installs what weft needs to build and run on a fresh machine. Idempotent; safe to re-run.
#   scripts/setup.sh           toolchain target for plugins
#   scripts/setup.sh --kafka   also what the test suite needs: the Kafka-compatible broker the
#                              tests start (tansu) and Confluent's Python client
#                              and headless Chromium with chromedriver (the catalog test)
set -euo pipefail

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "==> adding the wasm32-wasip2 target (plugins are built for it)"
    rustup target add wasm32-wasip2
fi

# The host links librdkafka, which the rdkafka crate builds from source with its configure
# script: it needs a C compiler, make and zlib (Debian; run as root).
missing=()
for tool in cc make pkg-config; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if (( ${#missing[@]} )) && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing a C toolchain for librdkafka (missing: ${missing[*]})"
    apt-get update
    apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev
fi

# The registry's end-to-end test drives it with Confluent's own Python client (its schema
# registry client and Avro serializers: fastavro, httpx, attrs, cachetools come as extras).
if [[ "${1:-}" == "--kafka" ]] && ! python3 -c 'import confluent_kafka.schema_registry.avro' >/dev/null 2>&1; then
    echo "==> installing confluent-kafka[avro,schemaregistry] (Python) for the registry's client test"
    if ! python3 -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        apt-get update
        apt-get install -y --no-install-recommends python3 python3-pip
    fi
    # Debian's own python3 is "externally managed" (PEP 668): retry past that guard.
    python3 -m pip install --quiet 'confluent-kafka[avro,schemaregistry]' ||
        python3 -m pip install --quiet --break-system-packages 'confluent-kafka[avro,schemaregistry]'
fi

if [[ "${1:-}" == "--kafka" ]] && ! command -v tansu >/dev/null 2>&1; then
    echo "==> installing tansu, a Kafka-compatible broker (about 8 minutes on 2 cores, once)"
    cargo install tansu --locked --features dynostore,libsql
fi

# The Python and JavaScript SDK tests (tests/tests/sdk_python.rs, sdk_js.rs) build processors
# from `weft new --lang python|js`: componentize-py for Python; node and npm for JavaScript
# (the scaffold's `npm install` brings componentize-js, esbuild and avsc from the registry).
if [[ "${1:-}" == "--kafka" ]] && ! command -v componentize-py >/dev/null 2>&1; then
    echo "==> installing componentize-py (Python processors are built with it)"
    if ! python3 -m pip --version >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
        apt-get update
        apt-get install -y --no-install-recommends python3 python3-pip
    fi
    python3 -m pip install --quiet 'componentize-py==0.25.1' ||
        python3 -m pip install --quiet --break-system-packages 'componentize-py==0.25.1'
fi
if [[ "${1:-}" == "--kafka" ]] && ! command -v npm >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing node and npm (JavaScript processors are built with them)"
    apt-get update
    apt-get install -y --no-install-recommends nodejs npm
fi

# The catalog's browser test (tests/catalog_ui.rs) drives Debian's headless Chromium through
# chromedriver (WebDriver); it fails without them, as the Kafka tests do without the broker.
if [[ "${1:-}" == "--kafka" ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
    echo "==> installing chromium and chromium-driver for the catalog's browser test"
    if command -v apt-get >/dev/null 2>&1; then
        apt-get update
        apt-get install -y --no-install-recommends chromium chromium-driver
    else
        echo "    no apt-get here: install Chromium and its chromedriver with your package manager" >&2
        exit 1
    fi
fi
