//! The WASI a processor sees: clocks that stand still and never block, stdout and stderr kept
//! as a bounded tail for trap reasons, and randomness that replays identically.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiView};

use super::HostState;

/// Bytes of stdout and of stderr kept per store (the most recent ones).
pub const OUTPUT_TAIL_BYTES: usize = 4 << 10;
/// Largest `get-random-bytes` / `get-insecure-random-bytes` request; larger ones trap. The
/// default of wasmtime-wasi (64 MiB) would let one call make the host allocate that much.
pub const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// The version of the WASI interfaces wasmtime-wasi links; guests importing any 0.2.x are
/// resolved to it, so shadowing this name replaces the function for all of them.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// The locked-down WASI context of one store: no preopened directories, no environment, no
/// arguments, no network, stdin closed (reads return end-of-stream at once), frozen clocks,
/// stdout/stderr into `output`, randomness from `random`.
pub(crate) fn context(output: &Output, random: &RandomStreams) -> WasiCtx {
    WasiCtxBuilder::new()
        .allow_blocking_current_thread(false)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false)
        .wall_clock(FrozenClock)
        .monotonic_clock(FrozenClock)
        .stdout(output.stdout.clone())
        .stderr(output.stderr.clone())
        .secure_random(random.generator(Stream::Secure))
        .insecure_random(random.generator(Stream::Insecure))
        // Read once per instance by std for HashMap keys: a constant keeps iteration order,
        // and so the output of processors that iterate maps, the same on every run.
        .insecure_random_seed(u128::from_le_bytes(*b"weft:insecure-sd"))
        .max_random_size(MAX_RANDOM_BYTES)
        .build()
}

/// Processors get no clock: both WASI clocks stand still at zero, so a processor's output
/// depends on its input and parameters only (replays give the same result).
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
    fn now(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Replaces the monotonic clock's `subscribe-duration` and `subscribe-instant` (what
/// `std::thread::sleep` and `poll` with a timeout use) with pollables that are ready at once.
///
/// wasmtime-wasi implements them with real tokio timers, and a host call blocked in a timer
/// runs no Wasm, so the epoch deadline cannot interrupt it: a processor sleeping 30 s held
/// the host 30 s whatever its deadline. With the clock frozen, no time passes for the guest
/// either way; a guest that loops until the clock moves spins in Wasm and meets its deadline.
pub(crate) fn shadow_blocking_clocks(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |store: StoreContextMut<'_, HostState>, (_duration,): (u64,)| ready_pollable(store),
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |store: StoreContextMut<'_, HostState>, (_instant,): (u64,)| ready_pollable(store),
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

fn ready_pollable(
    mut store: StoreContextMut<'_, HostState>,
) -> wasmtime::Result<(Resource<DynPollable>,)> {
    let table = store.data_mut().ctx().table;
    let ready = table.push(Ready)?;
    Ok((wasmtime_wasi::p2::subscribe(table, ready)?,))
}

/// A pollable that is always ready.
struct Ready;

#[wasmtime_wasi::async_trait]
impl Pollable for Ready {
    async fn ready(&mut self) {}
}

/// The stdout and stderr of one store, each keeping its last [`OUTPUT_TAIL_BYTES`].
#[derive(Clone, Default)]
pub(crate) struct Output {
    pub stdout: TailPipe,
    pub stderr: TailPipe,
}

impl Output {
    /// Forgets what was written, so the tails describe the next call only.
    pub fn clear(&self) {
        self.stdout.clear();
        self.stderr.clear();
    }
}

/// An output stream that accepts every write at once and keeps only the most recent bytes.
///
/// Never full and never blocking: a capped pipe would answer "closed" when full, and Rust's
/// `eprintln!` panics on a failed write, turning a chatty processor into a trapping one.
#[derive(Clone, Default)]
pub(crate) struct TailPipe {
    tail: Arc<Tail>,
}

#[derive(Default)]
struct Tail {
    buffer: Mutex<Vec<u8>>,
    /// Whether `buffer` may hold bytes: every call begins by clearing both tails, and most
    /// processors never write, so the common clear is one atomic swap instead of a lock.
    written: AtomicBool,
}

impl TailPipe {
    fn append(&self, bytes: &[u8]) {
        let mut buffer = self
            .tail
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(OUTPUT_TAIL_BYTES)..];
        let overflow = (buffer.len() + bytes.len()).saturating_sub(OUTPUT_TAIL_BYTES);
        buffer.drain(..overflow);
        buffer.extend_from_slice(bytes);
        self.tail.written.store(true, Ordering::Release);
    }

    pub fn clear(&self) {
        if self.tail.written.swap(false, Ordering::AcqRel) {
            self.tail
                .buffer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }

    /// What the tail holds, as text (invalid UTF-8 replaced).
    pub fn contents(&self) -> String {
        let buffer = self
            .tail
            .buffer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&buffer).into_owned()
    }
}

impl IsTerminal for TailPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for TailPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for TailPipe {
    async fn ready(&mut self) {}
}

impl OutputStream for TailPipe {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }
    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(usize::MAX)
    }
}

impl tokio::io::AsyncWrite for TailPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Which WASI randomness interface a stream serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Stream {
    Secure,
    Insecure,
}

/// Deterministic randomness for every stage of a store.
///
/// `wasi:random` would make a processor's output differ between a run and its replay. Each
/// stage instead draws from its own stream, SHA-256 in counter mode over a seed made of the
/// component's sha256 and the stage's position in the chain, so:
/// - a stage's numbers depend only on the calls it made, not on batch boundaries or on the
///   other stages sharing the store;
/// - an instance re-created after a trap starts its stream over, like the first one did;
/// - the numbers are predictable to anyone who has the component: never a secret.
#[derive(Clone, Default)]
pub(crate) struct RandomStreams {
    inner: Arc<Mutex<Streams>>,
}

#[derive(Default)]
struct Streams {
    /// Stage index of the call under way.
    current: usize,
    /// Component sha256 of each stage, by index: selected at every call, so kept per stage
    /// rather than copied at each switch between the stages of a chain.
    shas: Vec<String>,
    streams: HashMap<(usize, Stream), HashStream>,
}

impl RandomStreams {
    /// Makes the next draws come from this stage's streams.
    pub fn select(&self, stage: usize, sha256: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if inner.shas.len() <= stage {
            inner.shas.resize(stage + 1, String::new());
        }
        if inner.shas[stage] != sha256 {
            sha256.clone_into(&mut inner.shas[stage]);
        }
        inner.current = stage;
    }

    fn generator(&self, stream: Stream) -> StageRandom {
        StageRandom {
            streams: self.clone(),
            stream,
        }
    }

    fn fill(&self, stream: Stream, out: &mut [u8]) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Streams {
            current,
            shas,
            streams,
        } = &mut *inner;
        let stage = *current;
        let sha256 = shas.get(stage).map_or("", String::as_str);
        streams
            .entry((stage, stream))
            .or_insert_with(|| HashStream::new(stage, sha256, stream))
            .fill(out);
    }
}

/// The generator handed to the WASI context; draws from the selected stage's stream.
struct StageRandom {
    streams: RandomStreams,
    stream: Stream,
}

impl rand_core::TryRng for StageRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.streams.fill(self.stream, &mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.streams.fill(self.stream, &mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.streams.fill(self.stream, dst);
        Ok(())
    }
}

/// SHA-256 in counter mode: block `n` is `sha256(seed ‖ n)`. Fixed here rather than taken
/// from a crate whose algorithm may change between versions, which would break replays.
struct HashStream {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl HashStream {
    fn new(stage: usize, sha256: &str, stream: Stream) -> Self {
        let mut seed = Sha256::new();
        seed.update(b"weft wasi:random v1\0");
        seed.update(sha256.as_bytes());
        seed.update((stage as u64).to_le_bytes());
        seed.update([u8::from(stream == Stream::Insecure)]);
        Self {
            seed: seed.finalize().into(),
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn fill(&mut self, mut out: &mut [u8]) {
        while !out.is_empty() {
            if self.used == self.block.len() {
                let mut hasher = Sha256::new();
                hasher.update(self.seed);
                hasher.update(self.counter.to_le_bytes());
                self.block = hasher.finalize().into();
                self.counter += 1;
                self.used = 0;
            }
            let n = out.len().min(self.block.len() - self.used);
            out[..n].copy_from_slice(&self.block[self.used..self.used + n]);
            self.used += n;
            out = &mut out[n..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(streams: &RandomStreams, stream: Stream, n: usize) -> Vec<u8> {
        let mut out = vec![0; n];
        streams.fill(stream, &mut out);
        out
    }

    #[test]
    fn a_tail_describes_the_call_since_the_last_clear_only() {
        let pipe = TailPipe::default();
        pipe.clear();
        assert_eq!(pipe.contents(), "");
        pipe.append(b"first call");
        // A clone is what the WASI context writes through.
        let writer = pipe.clone();
        writer.append(b" | more");
        assert_eq!(pipe.contents(), "first call | more");
        pipe.clear();
        assert_eq!(pipe.contents(), "");
        pipe.clear();
        writer.append(b"second call");
        assert_eq!(pipe.contents(), "second call");
        pipe.clear();
        assert_eq!(pipe.contents(), "");
    }

    #[test]
    fn a_stage_stream_is_the_same_however_it_is_drawn_and_whatever_other_stages_draw() {
        let whole = RandomStreams::default();
        whole.select(1, "abc");
        let expected = draw(&whole, Stream::Secure, 100);

        let pieces = RandomStreams::default();
        let mut got = Vec::new();
        for chunk in [3, 40, 1, 56] {
            pieces.select(0, "abc");
            draw(&pieces, Stream::Secure, 7);
            pieces.select(1, "abc");
            got.extend(draw(&pieces, Stream::Secure, chunk));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn stages_streams_and_components_get_different_numbers() {
        let streams = RandomStreams::default();
        streams.select(0, "abc");
        let a = draw(&streams, Stream::Secure, 16);
        let b = draw(&streams, Stream::Insecure, 16);
        streams.select(1, "abc");
        let c = draw(&streams, Stream::Secure, 16);
        streams.select(0, "abd");
        let d = draw(&streams, Stream::Secure, 16);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn the_tail_keeps_the_most_recent_bytes() {
        let pipe = TailPipe::default();
        pipe.append(b"first line\n");
        pipe.append(&vec![b'x'; OUTPUT_TAIL_BYTES]);
        pipe.append(b"\nlast line");
        let tail = pipe.contents();
        assert_eq!(tail.len(), OUTPUT_TAIL_BYTES);
        assert!(tail.ends_with("xx\nlast line"));
        assert!(!tail.contains("first"));
        pipe.clear();
        assert_eq!(pipe.contents(), "");
    }
}
