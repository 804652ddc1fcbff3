//! A file pipeline: list a directory, read its files, count their words,
//! write a summary. Every file system call goes through `grove::blocking`,
//! which runs it on the runtime's blocking pool and parks only the calling
//! green thread: the workers keep running the other stages meanwhile.
//! The stages talk through channels (Go's pipeline pattern).
//!
//! ```text
//! cargo run --release --example file_pipeline
//! ```
//!
//! It makes a temporary directory of 200 files first, and removes it at
//! the end. `grove::blocking`'s closure may borrow (the caller waits for
//! it), so `fs::read(&path)` needs no clone.

use std::fs;
use std::path::{Path, PathBuf};

use grove::chan;

const FILES: usize = 200;
const READERS: usize = 8;
const COUNTERS: usize = 4;

/// The text of file `i`: `i + 1` lines of a few words.
fn text(i: usize) -> String {
    (0..=i)
        .map(|line| format!("file {i} line {line} says hello\n"))
        .collect()
}

/// Makes the input directory, writing the files from green threads.
fn make_input(dir: &Path) {
    grove::blocking(|| fs::create_dir_all(dir)).unwrap();
    let writers: Vec<_> = (0..FILES)
        .map(|i| {
            let path = dir.join(format!("{i:03}.txt"));
            grove::go(move || grove::blocking(|| fs::write(&path, text(i))).unwrap())
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
}

struct Counted {
    path: PathBuf,
    bytes: usize,
    words: usize,
}

fn main() {
    let dir = std::env::temp_dir().join(format!("grove-file-pipeline-{}", std::process::id()));
    let out = dir.join("summary.txt");
    let (files, bytes, words) = grove::run(move || {
        make_input(&dir);

        // Stage 1: list the directory.
        let (paths_tx, paths_rx) = chan::bounded::<PathBuf>(16);
        let lister = {
            let dir = dir.clone();
            grove::go(move || {
                let mut entries = grove::blocking(|| fs::read_dir(&dir)).unwrap();
                // Each step of the listing is a system call too.
                while let Some(entry) = grove::blocking(|| entries.next()) {
                    paths_tx.send(entry.unwrap().path()).unwrap();
                }
            })
        };

        // Stage 2: read the files, several at once.
        let (contents_tx, contents_rx) = chan::bounded::<(PathBuf, Vec<u8>)>(16);
        let readers: Vec<_> = (0..READERS)
            .map(|_| {
                let (paths, contents) = (paths_rx.clone(), contents_tx.clone());
                grove::go(move || {
                    for path in &paths {
                        let data = grove::blocking(|| fs::read(&path)).unwrap();
                        contents.send((path, data)).unwrap();
                    }
                })
            })
            .collect();
        drop((paths_rx, contents_tx));

        // Stage 3: count (plain computation, in green threads).
        let (counted_tx, counted_rx) = chan::bounded::<Counted>(16);
        let counters: Vec<_> = (0..COUNTERS)
            .map(|_| {
                let (contents, counted) = (contents_rx.clone(), counted_tx.clone());
                grove::go(move || {
                    for (path, data) in &contents {
                        let words = data
                            .split(|b| b.is_ascii_whitespace())
                            .filter(|w| !w.is_empty())
                            .count();
                        counted
                            .send(Counted {
                                path,
                                bytes: data.len(),
                                words,
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        drop((contents_rx, counted_tx));

        // Stage 4: collect and write the summary.
        let mut all: Vec<Counted> = counted_rx.iter().collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        let summary: String = all
            .iter()
            .map(|c| format!("{} {} bytes {} words\n", c.path.display(), c.bytes, c.words))
            .collect();
        grove::blocking(|| fs::write(&out, &summary)).unwrap();
        for h in readers.into_iter().chain(counters).chain([lister]) {
            h.join().unwrap();
        }
        let written = grove::blocking(|| fs::read_to_string(&out)).unwrap();
        assert_eq!(written, summary);
        grove::blocking(|| fs::remove_dir_all(&dir)).unwrap();
        let bytes = all.iter().map(|c| c.bytes).sum::<usize>();
        let words = all.iter().map(|c| c.words).sum::<usize>();
        (all.len(), bytes, words)
    });
    println!("{files} files, {bytes} bytes, {words} words");
    let want_bytes: usize = (0..FILES).map(|i| text(i).len()).sum();
    let want_words: usize = (0..FILES).map(|i| 6 * (i + 1)).sum();
    assert_eq!((files, bytes, words), (FILES, want_bytes, want_words));
}
