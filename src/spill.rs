//! Transcripts of passing steps, kept on disk until the reports are written.
//!
//! Every step's transcript goes into `run.json`, but only a step that did not pass
//! needs its transcript anywhere else (the terminal, JUnit, the HTML page). A long
//! suite's passing transcripts would otherwise be the largest thing a run holds (~1
//! KiB per step, as much as all the rest of its record), so they are appended to an
//! anonymous temporary file and read back one at a time while `run.json` is written.
//! The file has no name and disappears with the process, also after a crash.

use std::fs::File;
use std::io::{BufWriter, Write};
#[cfg(not(unix))]
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

/// `SpillFile::end` once a write failed.
const BROKEN: u64 = u64::MAX;

/// The spill file shared by every scenario of a run.
#[derive(Debug)]
pub struct Spill {
    file: Mutex<SpillFile>,
}

#[derive(Debug)]
struct SpillFile {
    writer: BufWriter<File>,
    /// Bytes written so far: where the next transcript starts.
    end: u64,
}

impl Spill {
    /// An anonymous temporary file (in `$TMPDIR`, or `/tmp`).
    pub fn new() -> std::io::Result<Arc<Spill>> {
        Ok(Arc::new(Spill {
            file: Mutex::new(SpillFile {
                writer: BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?),
                end: 0,
            }),
        }))
    }

    /// Moves `text` to the file; keeps it in memory if the file cannot take it.
    pub fn keep(&self, text: String) -> Transcript {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let len = match u32::try_from(text.len()) {
            Ok(len) if file.end != BROKEN => len,
            _ => return Transcript::Text(text),
        };
        if file.writer.write_all(text.as_bytes()).is_err() {
            // After a partial write the next offset is unknown: stop spilling.
            file.end = BROKEN;
            return Transcript::Text(text);
        }
        let offset = file.end;
        file.end += u64::from(len);
        Transcript::Spilled { offset, len }
    }

    /// A transcript as text, read back from the file if it is there.
    pub fn text_of(&self, transcript: &Transcript) -> String {
        match transcript {
            Transcript::Text(t) => t.clone(),
            Transcript::Spilled { offset, len } => self
                .read(*offset, *len)
                .unwrap_or_else(|e| format!("(the transcript could not be read back: {e})")),
        }
    }

    fn read(&self, offset: u64, len: u32) -> std::io::Result<String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.writer.flush()?;
        let f = file.writer.get_mut();
        let mut bytes = vec![0; len as usize];
        // One positioned read (no seek there and back: two system calls fewer for
        // every step `run.json` reads back).
        #[cfg(unix)]
        std::os::unix::fs::FileExt::read_exact_at(&*f, &mut bytes, offset)?;
        #[cfg(not(unix))]
        {
            f.seek(SeekFrom::Start(offset))?;
            let read = f.read_exact(&mut bytes);
            // Later transcripts are appended at the end again.
            f.seek(SeekFrom::End(0))?;
            read?;
        }
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// What was sent and received in one step, redacted: the text itself, or where it
/// waits in the run's spill file ([`Spill`]) until `run.json` is written. A
/// step that did not pass always keeps its text here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transcript {
    Text(String),
    Spilled { offset: u64, len: u32 },
}

impl Transcript {
    /// The text, unless it is in the spill file.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Transcript::Text(t) => Some(t),
            Transcript::Spilled { .. } => None,
        }
    }
}

impl From<String> for Transcript {
    fn from(text: String) -> Self {
        Transcript::Text(text)
    }
}

impl From<&str> for Transcript {
    fn from(text: &str) -> Self {
        Transcript::Text(text.to_owned())
    }
}

impl serde::Serialize for Transcript {
    /// A spilled transcript is read back by the `run.json` writer, which holds the
    /// spill file while it serializes ([`reading`]).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Transcript::Text(t) => serializer.serialize_str(t),
            Transcript::Spilled { offset, len } => {
                serializer.serialize_str(&read_back(*offset, *len))
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Transcript {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Transcript::Text)
    }
}

thread_local! {
    /// The spill file the `run.json` writer reads back from, on its thread, while it
    /// serializes ([`reading`]).
    static READING: std::cell::RefCell<Option<Arc<Spill>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `write` with `spill` as the file spilled transcripts are read back from on
/// this thread (the `run.json` writer).
pub fn reading<R>(spill: Option<&Arc<Spill>>, write: impl FnOnce() -> R) -> R {
    READING.with(|r| *r.borrow_mut() = spill.cloned());
    let result = write();
    READING.with(|r| *r.borrow_mut() = None);
    result
}

/// A spilled transcript's text, from the file [`reading`] names on this thread.
pub fn read_back(offset: u64, len: u32) -> String {
    READING.with(|r| match r.borrow().as_ref() {
        Some(spill) => spill
            .read(offset, len)
            .unwrap_or_else(|e| format!("(the transcript could not be read back: {e})")),
        None => {
            "(the transcript is in the run's temporary file, which is not open here)".to_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spilled_transcripts_read_back_in_any_order_between_writes() {
        let spill = Spill::new().unwrap();
        let texts: Vec<String> = (0..50)
            .map(|i| format!("> GET /Patient/{i}\n< 200\n< {}\n", "é".repeat(i)))
            .collect();
        let kept: Vec<Transcript> = texts.iter().map(|t| spill.keep(t.clone())).collect();
        assert!(matches!(kept[7], Transcript::Spilled { .. }));
        let text = |t: &Transcript| reading(Some(&spill), || serde_json::to_value(t).unwrap());
        // A read in the middle, then more writes: both still right.
        assert_eq!(text(&kept[3]), texts[3].as_str());
        let later = spill.keep("> later\n".to_owned());
        for (k, t) in kept.iter().zip(&texts).rev() {
            assert_eq!(text(k), t.as_str());
        }
        assert_eq!(text(&later), "> later\n");
        // Outside the writer's scope, a spilled transcript says where it is.
        let elsewhere = serde_json::to_value(&kept[0]).unwrap();
        assert!(elsewhere.as_str().unwrap().contains("temporary file"));
        let back: Transcript = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back.as_text(), Some("x"));
    }
}
