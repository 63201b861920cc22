//! Transcripts of passing steps, kept on disk until the reports are written.
//!
//! Every step's transcript goes into `run.json`, but only a step that did not pass
//! needs its transcript anywhere else (the terminal, JUnit, the HTML page). A long
//! suite's passing transcripts would otherwise be the largest thing a run holds (~1
//! KiB per step, as much as all the rest of its record), so they are appended to an
//! anonymous temporary file and read back one at a time while `run.json` is written.
//! The file has no name and disappears with the process, also after a crash.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    pub fn keep(self: &Arc<Self>, text: String) -> Transcript {
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
        Transcript::Spilled {
            spill: Arc::clone(self),
            offset,
            len,
        }
    }

    fn read(&self, offset: u64, len: u32) -> std::io::Result<String> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.writer.flush()?;
        let f = file.writer.get_mut();
        f.seek(SeekFrom::Start(offset))?;
        let mut bytes = vec![0; len as usize];
        let read = f.read_exact(&mut bytes);
        // Later transcripts are appended at the end again.
        f.seek(SeekFrom::End(0))?;
        read?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

/// A step's transcript: in memory, or in the run's [`Spill`] file.
#[derive(Debug, Clone)]
pub enum Transcript {
    Text(String),
    Spilled {
        spill: Arc<Spill>,
        offset: u64,
        len: u32,
    },
}

impl Transcript {
    /// The text (read back from the spill file if it is there).
    pub fn text(&self) -> Cow<'_, str> {
        match self {
            Transcript::Text(t) => Cow::Borrowed(t),
            Transcript::Spilled { spill, offset, len } => Cow::Owned(
                spill
                    .read(*offset, *len)
                    .unwrap_or_else(|e| format!("(the transcript could not be read back: {e})")),
            ),
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

impl std::fmt::Display for Transcript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Transcript {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

impl<'de> Deserialize<'de> for Transcript {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Transcript::Text)
    }
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
        // A read in the middle, then more writes: both still right.
        assert_eq!(kept[3].text(), texts[3]);
        let later = spill.keep("> later\n".to_owned());
        for (k, t) in kept.iter().zip(&texts).rev() {
            assert_eq!(k.text(), *t);
            assert_eq!(serde_json::to_value(k).unwrap(), serde_json::json!(t));
        }
        assert_eq!(later.text(), "> later\n");
        let back: Transcript = serde_json::from_str("\"x\"").unwrap();
        assert_eq!(back.to_string(), "x");
    }
}
