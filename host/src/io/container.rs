//! Avro object container files, read block by block without apache-avro's `Reader`.
//!
//! apache-avro's `Reader` decodes each record into a `Value` by recursion, so one record
//! nested a few thousand levels deep (two bytes per level for a linked list) overflows the
//! stack before the host can look at it. Here each record's bytes are found and checked by
//! [`DatumCheck`] and handed on as they are: a record that is nested too deep or corrupt
//! becomes a dead letter and the records after it still flow, and no `Value` is built at all.
//! A block is read whole, so its size is capped twice: as stored and once decompressed (a
//! few KiB of deflate can claim gigabytes).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use apache_avro::{Codec, Schema};
use miniz_oxide::inflate::TINFLStatus;
use weft_schema::datum::{DatumCheck, DatumError};
use weft_schema::parse_schema;

use crate::{Error, Result};

const MAGIC: &[u8; 4] = b"Obj\x01";
/// Largest block, as stored and once decompressed, and largest header value read into
/// memory. Writers use blocks of kilobytes to a few megabytes (Java's sync interval is
/// 64 KiB, apache-avro's 16 KB); one cap for both forms means a file the reader accepts
/// uncompressed is accepted deflated too, and one block holds at most twice this in memory.
pub const MAX_BLOCK_BYTES: u64 = 256 << 20;
/// Most entries in the header's metadata map.
const MAX_META_ENTRIES: u64 = 1024;
/// Records a block may claim beyond one per byte of its data.
const FREE_RECORDS: u64 = 1 << 16;

/// One record of the file: its datum, or its bytes and why they are not a datum.
#[derive(Debug)]
pub enum Record {
    Datum(Vec<u8>),
    Bad { bytes: Vec<u8>, reason: String },
}

/// An open container file.
pub struct ContainerReader {
    path: PathBuf,
    input: BufReader<File>,
    schema: Arc<Schema>,
    check: DatumCheck,
    codec: Codec,
    sync: [u8; 16],
    /// The current block, decompressed, and where its next record starts.
    block: Vec<u8>,
    pos: usize,
    /// Records of the current block not yet read.
    left: u64,
    /// Records read so far (1-based number of the last one).
    pub read: u64,
    /// Blocks read so far (1-based number of the current one).
    blocks: u64,
    /// Largest block, as stored or decompressed.
    max_block: u64,
}

impl ContainerReader {
    /// Opens `path` and reads its header; records nested deeper than `max_depth` become
    /// [`Record::Bad`].
    pub fn open(path: &Path, max_depth: usize) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let mut input = BufReader::new(file);
        let fail = |reason: String| Error::Source {
            source_name: format!("avro-file {}", path.display()),
            reason: format!("not an Avro object container file: {reason}"),
        };
        let mut magic = [0u8; 4];
        read_exact(&mut input, &mut magic).map_err(fail)?;
        if &magic != MAGIC {
            return Err(fail("wrong magic bytes".into()));
        }
        let mut schema_text = None;
        let mut codec = "null".to_string();
        loop {
            let count = read_long(&mut input).map_err(fail)?;
            if count == 0 {
                break;
            }
            if count < 0 {
                read_long(&mut input).map_err(fail)?;
            }
            if count.unsigned_abs() > MAX_META_ENTRIES {
                return Err(fail(format!("{count} metadata entries")));
            }
            for _ in 0..count.unsigned_abs() {
                let key = read_bytes(&mut input).map_err(fail)?;
                let value = read_bytes(&mut input).map_err(fail)?;
                match key.as_slice() {
                    b"avro.schema" => schema_text = Some(value),
                    b"avro.codec" => codec = String::from_utf8_lossy(&value).into_owned(),
                    _ => {}
                }
            }
        }
        let mut sync = [0u8; 16];
        read_exact(&mut input, &mut sync).map_err(fail)?;
        let text = schema_text.ok_or_else(|| fail("no avro.schema in the header".into()))?;
        let text = String::from_utf8(text).map_err(|e| fail(format!("avro.schema: {e}")))?;
        let schema = parse_schema(&text).map_err(|e| Error::Schema {
            origin: format!("{} (header)", path.display()),
            reason: e.to_string(),
        })?;
        let check = DatumCheck::new(&schema, max_depth).map_err(|reason| Error::Schema {
            origin: format!("{} (header)", path.display()),
            reason,
        })?;
        let codec = Codec::from_str(&codec)
            .map_err(|_| fail(format!("codec {codec:?} is not supported")))?;
        Ok(Self {
            path: path.to_path_buf(),
            input,
            schema: Arc::new(schema),
            check,
            codec,
            sync,
            block: Vec::new(),
            pos: 0,
            left: 0,
            read: 0,
            blocks: 0,
            max_block: MAX_BLOCK_BYTES,
        })
    }

    /// Caps each block, as stored and once decompressed, at `bytes` instead of
    /// [`MAX_BLOCK_BYTES`]; past it the file fails.
    pub fn with_max_block(mut self, bytes: u64) -> Self {
        self.max_block = bytes;
        self
    }

    pub fn schema(&self) -> Arc<Schema> {
        self.schema.clone()
    }

    fn fail(&self, reason: String) -> Error {
        Error::Source {
            source_name: format!("avro-file {}", self.path.display()),
            reason: format!("after record {}: {reason}", self.read),
        }
    }

    /// The next record, `None` at the end of the file. Fails only when the file's framing
    /// is corrupt (a block cannot be found), not for a bad record.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        while self.left == 0 {
            if !self.next_block()? {
                return Ok(None);
            }
        }
        self.left -= 1;
        self.read += 1;
        let rest = &self.block[self.pos..];
        match self.check.datum_len(rest) {
            Ok(len) => {
                self.pos += len;
                Ok(Some(Record::Datum(rest[..len].to_vec())))
            }
            Err(e @ DatumError::TooDeep { end: Some(len), .. }) => {
                self.pos += len;
                Ok(Some(Record::Bad {
                    bytes: rest[..len].to_vec(),
                    reason: format!("record {}: {e}", self.read),
                }))
            }
            Err(e) => {
                // Where this record ends is unknown, so the rest of the block goes with
                // it; the next block starts after the sync marker.
                let skipped = self.left;
                let bytes = rest.to_vec();
                self.left = 0;
                self.pos = self.block.len();
                Ok(Some(Record::Bad {
                    bytes,
                    reason: format!(
                        "record {}: not a datum of the file's schema: {e}{}",
                        self.read,
                        if skipped > 0 {
                            format!(" (with the {skipped} records after it in its block)")
                        } else {
                            String::new()
                        }
                    ),
                }))
            }
        }
    }

    /// Reads the next block; `false` at the end of the file.
    fn next_block(&mut self) -> Result<bool> {
        let mut first = [0u8; 1];
        match self.input.read(&mut first) {
            Ok(0) => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(Error::io(&self.path, e)),
        }
        self.blocks += 1;
        let count = read_long_after(&mut self.input, first[0]).map_err(|e| self.fail(e))?;
        let size = read_long(&mut self.input).map_err(|e| self.fail(e))?;
        let size = u64::try_from(size)
            .ok()
            .filter(|&s| s <= self.max_block)
            .ok_or_else(|| self.fail(format!("block {}: {size} bytes", self.blocks)))?;
        let mut block = vec![0u8; size as usize];
        read_exact(&mut self.input, &mut block).map_err(|e| self.fail(e))?;
        let block = self.decompress(block)?;
        let mut sync = [0u8; 16];
        read_exact(&mut self.input, &mut sync).map_err(|e| self.fail(e))?;
        if sync != self.sync {
            return Err(self.fail("a block's sync marker does not match the header's".into()));
        }
        // Records of a type that takes no bytes (`null`, an empty record) cost nothing to
        // claim: a count beyond one per byte (and some slack) would have the source hand out
        // empty events without end.
        let count = u64::try_from(count)
            .ok()
            .filter(|&n| n <= block.len() as u64 + FREE_RECORDS)
            .ok_or_else(|| {
                self.fail(format!(
                    "block {}: {count} records in {} bytes",
                    self.blocks,
                    block.len()
                ))
            })?;
        self.block = block;
        self.pos = 0;
        self.left = count;
        Ok(true)
    }

    /// Decompresses a block, refusing one that would grow past `max_block`. Such a block
    /// fails the file rather than becoming a dead letter: no writer makes one (see
    /// [`MAX_BLOCK_BYTES`]), so it is a hostile or broken file, and its records cannot be
    /// told apart without holding it all; a dead letter would drop them silently in bulk.
    fn decompress(&self, block: Vec<u8>) -> Result<Vec<u8>> {
        // An exhaustive match: a codec enabled later (snappy, zstandard, ...) must be given
        // a cap here before the file compiles.
        match self.codec {
            Codec::Null => Ok(block),
            Codec::Deflate(_) => {
                let cap = usize::try_from(self.max_block).unwrap_or(usize::MAX);
                miniz_oxide::inflate::decompress_to_vec_with_limit(&block, cap).map_err(|e| {
                    let reason = match e.status {
                        TINFLStatus::HasMoreOutput => format!(
                            "inflates to more than {} (a compression bomb?)",
                            describe_bytes(self.max_block)
                        ),
                        status => format!("not valid deflate data ({status:?})"),
                    };
                    self.fail(format!("block {}: {reason}", self.blocks))
                })
            }
        }
    }
}

/// `256 MiB` for whole mebibytes, else a byte count: how limits are named in errors.
pub(crate) fn describe_bytes(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

fn read_exact(input: &mut impl Read, buf: &mut [u8]) -> std::result::Result<(), String> {
    input.read_exact(buf).map_err(|e| format!("{e}"))
}

fn read_long(input: &mut impl Read) -> std::result::Result<i64, String> {
    let mut b = [0u8; 1];
    read_exact(input, &mut b)?;
    read_long_after(input, b[0])
}

/// A zigzag varint whose first byte has been read.
fn read_long_after(input: &mut impl Read, first: u8) -> std::result::Result<i64, String> {
    let mut z = u64::from(first & 0x7f);
    let mut byte = first;
    let mut shift = 7;
    while byte & 0x80 != 0 {
        if shift > 63 {
            return Err("a varint longer than ten bytes".into());
        }
        let mut b = [0u8; 1];
        read_exact(input, &mut b)?;
        byte = b[0];
        z |= u64::from(byte & 0x7f) << shift;
        shift += 7;
    }
    Ok((z >> 1) as i64 ^ -((z & 1) as i64))
}

fn read_bytes(input: &mut impl Read) -> std::result::Result<Vec<u8>, String> {
    let len = read_long(input)?;
    let len = u64::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_BLOCK_BYTES)
        .ok_or_else(|| format!("a header value of {len} bytes"))?;
    let mut buf = vec![0u8; len as usize];
    read_exact(input, &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use apache_avro::types::Value;
    use apache_avro::{Writer, from_avro_datum};

    use super::*;

    fn zigzag(n: i64, out: &mut Vec<u8>) {
        let mut z = ((n << 1) ^ (n >> 63)) as u64;
        while z > 0x7f {
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    /// A container of `long`s with `codec`, one block per (record count, stored bytes),
    /// written by hand.
    fn file(codec: &str, blocks: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let sync = [9u8; 16];
        let mut out = MAGIC.to_vec();
        zigzag(2, &mut out);
        for text in ["avro.schema", r#""long""#, "avro.codec", codec] {
            zigzag(text.len() as i64, &mut out);
            out.extend_from_slice(text.as_bytes());
        }
        zigzag(0, &mut out);
        out.extend_from_slice(&sync);
        for (count, data) in blocks {
            zigzag(*count, &mut out);
            zigzag(data.len() as i64, &mut out);
            out.extend_from_slice(data);
            out.extend_from_slice(&sync);
        }
        out
    }

    /// An uncompressed container of `long`s, one block per slice of datums.
    fn container(blocks: &[&[&[u8]]]) -> Vec<u8> {
        let blocks: Vec<_> = blocks
            .iter()
            .map(|b| (b.len() as i64, b.concat()))
            .collect();
        file("null", &blocks)
    }

    fn read_capped(bytes: &[u8], max_block: u64) -> Result<Vec<Record>> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.avro");
        std::fs::write(&path, bytes).expect("write");
        let mut reader = ContainerReader::open(&path, 64)?.with_max_block(max_block);
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>> {
        read_capped(bytes, MAX_BLOCK_BYTES)
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut data = data.to_vec();
        Codec::Deflate(Default::default())
            .compress(&mut data)
            .expect("deflate");
        data
    }

    #[test]
    fn a_deflate_block_inflating_past_the_cap_fails_the_file_naming_the_block() {
        // 1 MiB of zero bytes (a million `long` zeros) deflates to about a KiB; the cap is
        // 64 KiB, so the reader must stop inflating at the cap instead of holding the MiB.
        let bomb = deflate(&vec![0u8; 1 << 20]);
        assert!(bomb.len() < 4096, "{} bytes", bomb.len());
        let fits = deflate(&[0u8; 1 << 16]);
        let bytes = file("deflate", &[(1 << 16, fits), (1, bomb)]);
        let err = read_capped(&bytes, 1 << 16).expect_err("refused");
        let text = err.to_string();
        assert!(text.starts_with("source avro-file "), "{text}");
        assert!(text.contains("t.avro: after record 65536: "), "{text}");
        assert!(
            text.ends_with("block 2: inflates to more than 65536 bytes (a compression bomb?)"),
            "{text}"
        );
        // The same file reads whole under the default cap.
        let records = read_all(&bytes).expect("within 256 MiB");
        assert_eq!(records.len(), (1 << 16) + 1);
    }

    #[test]
    fn a_stored_block_past_the_cap_fails_the_file_and_corrupt_deflate_is_named() {
        let bytes = file("null", &[(1, vec![0u8; 101])]);
        let err = read_capped(&bytes, 100).expect_err("refused");
        assert!(
            err.to_string()
                .ends_with("after record 0: block 1: 101 bytes"),
            "{err}"
        );
        let bytes = file("deflate", &[(1, vec![0xff; 8])]);
        let err = read_all(&bytes).expect_err("refused");
        assert!(
            err.to_string()
                .contains("block 1: not valid deflate data (Failed)"),
            "{err}"
        );
    }

    #[test]
    fn a_corrupt_record_loses_only_the_rest_of_its_block() {
        // Block 1: 1, a varint that never ends, 2; block 2: 3.
        let records = read_all(&container(&[&[&[2], &[0xff; 11], &[4]], &[&[6]]]))
            .expect("framing is intact");
        assert_eq!(records.len(), 3);
        assert!(matches!(&records[0], Record::Datum(d) if d == &[2]));
        assert!(matches!(
            &records[1],
            Record::Bad { reason, .. } if reason == "record 2: not a datum of the file's schema: \
                a varint longer than ten bytes at byte 0 (with the 1 records after it in its block)"
        ));
        assert!(matches!(&records[2], Record::Datum(d) if d == &[6]));
    }

    #[test]
    fn a_block_claiming_more_records_than_bytes_is_corrupt_framing() {
        let mut file = container(&[]);
        zigzag(1 << 40, &mut file);
        zigzag(1, &mut file);
        file.push(2);
        file.extend_from_slice(&[9u8; 16]);
        let err = read_all(&file).expect_err("refused");
        assert!(
            err.to_string()
                .contains("block 1: 1099511627776 records in 1 bytes"),
            "{err}"
        );
    }

    #[test]
    fn reads_what_apache_avro_writes_with_either_codec() {
        let schema = Schema::parse_str(
            r#"{"type":"record","name":"T","fields":[{"name":"id","type":"long"},{"name":"s","type":"string"}]}"#,
        )
        .expect("schema");
        for codec in [Codec::Null, Codec::Deflate(Default::default())] {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("t.avro");
            let mut writer = Writer::with_codec(&schema, Vec::new(), codec);
            for i in 0..1000 {
                writer
                    .append(Value::Record(vec![
                        ("id".into(), Value::Long(i)),
                        ("s".into(), Value::String(format!("event {i}"))),
                    ]))
                    .expect("append");
            }
            std::fs::write(&path, writer.into_inner().expect("bytes")).expect("write");
            let mut reader = ContainerReader::open(&path, 64).expect("opens");
            let mut ids = Vec::new();
            while let Some(record) = reader.next_record().expect("reads") {
                let Record::Datum(bytes) = record else {
                    panic!("bad record: {record:?}")
                };
                let value = from_avro_datum(&schema, &mut bytes.as_slice(), None).expect("datum");
                let Value::Record(fields) = value else {
                    panic!("not a record")
                };
                ids.push(fields[0].1.clone());
            }
            assert_eq!(ids.len(), 1000);
            assert_eq!(ids[999], Value::Long(999));
        }
    }
}
