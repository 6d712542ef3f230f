//! Embeds the web page (`server/web/`: built from `clients/web/` by its
//! `npm run build` and committed, so building the server needs no Node).
//! Writes `$OUT_DIR/web_files.rs`: one `WebFile` per served file, with its
//! bytes and its precompressed forms (`NAME.gz`, `NAME.br` beside it) by
//! `include_bytes!`. `src/http/web.rs` serves them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &mut files);
    }
    files.sort();
    let mut out = String::from("static FILES: &[WebFile] = &[\n");
    for path in &files {
        let name = path
            .strip_prefix(&root)
            .expect("under web/")
            .to_str()
            .expect("web file names are UTF-8")
            .replace('\\', "/");
        if name.ends_with(".gz") || name.ends_with(".br") {
            continue;
        }
        let encoded = |suffix: &str| {
            let mut compressed = path.clone().into_os_string();
            compressed.push(suffix);
            let compressed = PathBuf::from(compressed);
            if compressed.is_file() {
                format!(
                    "Some(include_bytes!({:?}))",
                    compressed.display().to_string()
                )
            } else {
                "None".to_owned()
            }
        };
        let _ = writeln!(
            out,
            "    WebFile {{ path: {name:?}, identity: include_bytes!({:?}), gzip: {}, brotli: {} }},",
            path.display().to_string(),
            encoded(".gz"),
            encoded(".br"),
        );
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("web_files.rs");
    std::fs::write(&target, out).expect("write web_files.rs");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("read web/");
    for entry in entries {
        let path = entry.expect("web/ entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
