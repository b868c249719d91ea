//! The pipelines' data side of an agent (docs/pipelines.md, the design's "data container"):
//! [`serve`] does one [`DataRequest`] under `<root>/pipelines/<cluster>/<pipeline>` — cuts a
//! source's files into batches, stages a batch in a fresh directory and runs the unit's program
//! on it, delivers a batch to a sink's directory, hands a batch's files over, or removes a
//! batch that is clean. Every name and
//! path in a request is checked here before it touches the disk: relative paths stay inside the
//! pipeline's directory. The server's in-process runs use the same function ([`LocalHosts`]).
//!
//! [`LocalHosts`]: crate::pipeline::run::LocalHosts

use crate::transport::data::{
    BatchData, Carried, DataAnswer, DataFile, DataOp, DataRequest, Limits, MAX_CARRIED_BYTES,
    ProgramRef,
};
use std::path::{Component, Path, PathBuf};
use tokio::io::AsyncReadExt;

/// The most of a failing program's stderr its error quotes.
const STDERR_TAIL: usize = 2048;

/// Does `request` under `root` (an agent's root); the error says what went wrong, for the
/// server to show.
pub async fn serve(root: &Path, request: DataRequest) -> Result<DataAnswer, String> {
    let base = root.join("pipelines").join(relative(&request.pipeline)?);
    match request.op {
        DataOp::Cut {
            source,
            path,
            records,
            settle,
            skip,
        } => {
            let (path, source) = (absolute(&path)?, plain(&source)?);
            cut(&base, source, path, records, settle, &skip).await
        }
        DataOp::Process {
            unit,
            work,
            inputs,
            program,
            timeout,
            limits,
        } => {
            let work_dir = base.join(plain(&unit)?).join(plain(&work)?);
            let program = match &program {
                ProgramRef::Path(p) => absolute(p)?.to_path_buf(),
                ProgramRef::Carried { name, content } => {
                    let path = base.join("programs").join(plain(name)?);
                    write_program(&path, content).await?;
                    path
                }
            };
            // One program at a time per batch directory: a request the server gave up on (its
            // run was aborted) may still run here when the batch is processed again.
            let _busy = Busy::take(&work_dir).await;
            let (input, output) = (work_dir.join("in"), work_dir.join("out"));
            // A batch processed again starts from nothing: the same names, written anew.
            let _ = tokio::fs::remove_dir_all(&work_dir).await;
            stage_all(&base, &inputs, &input).await?;
            tokio::fs::create_dir_all(&output)
                .await
                .map_err(|e| io(&output, e))?;
            run(&program, &input, &output, &work_dir, timeout, limits).await?;
            let rel = output
                .strip_prefix(&base)
                .map_err(|_| "the output is outside the pipeline".to_string())?;
            Ok(DataAnswer {
                output: rel.to_string_lossy().into_owned(),
                ..DataAnswer::default()
            })
        }
        DataOp::Deliver { input, dest } => {
            let dest = if dest.starts_with('/') {
                absolute(&dest)?.to_path_buf()
            } else {
                base.join(relative(&dest)?)
            };
            let to = dest.join(plain(&input.name)?);
            let _ = tokio::fs::remove_dir_all(&to).await;
            stage(&base, &input.data, &to).await?;
            Ok(DataAnswer::default())
        }
        DataOp::Remove { dir } => {
            let at = base.join(relative(&dir)?);
            match tokio::fs::remove_dir_all(&at).await {
                Ok(()) => Ok(DataAnswer::default()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DataAnswer::default()),
                Err(e) => Err(io(&at, e)),
            }
        }
        DataOp::Fetch { dir } => {
            let from = base.join(relative(&dir)?);
            Ok(DataAnswer {
                files: read_files(&from).await?,
                ..DataAnswer::default()
            })
        }
    }
}

/// The batch directories a request works in now, each with its lock.
static BUSY: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<PathBuf, std::sync::Arc<tokio::sync::Mutex<()>>>>,
> = std::sync::LazyLock::new(Default::default);

/// A batch directory held by one request until dropped.
struct Busy {
    path: PathBuf,
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Busy {
    /// Waits until no other request works in `path`, then holds it.
    async fn take(path: &Path) -> Busy {
        let lock = BUSY
            .lock()
            .expect("not poisoned")
            .entry(path.to_path_buf())
            .or_default()
            .clone();
        Busy {
            path: path.to_path_buf(),
            _guard: lock.lock_owned().await,
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut busy = BUSY.lock().expect("not poisoned");
        // Ours and the table's: nobody else waits, so the entry goes.
        if busy
            .get(&self.path)
            .is_some_and(|l| std::sync::Arc::strong_count(l) <= 2)
        {
            busy.remove(&self.path);
        }
    }
}

fn io(p: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", p.display())
}

/// A plain file name: not empty, no `/`, not `.` or `..`, no NUL.
pub fn plain(name: &str) -> Result<&str, String> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        Err(format!("'{name}' is not a plain file name"))
    } else {
        Ok(name)
    }
}

/// A relative path of plain names only.
fn relative(path: &str) -> Result<&Path, String> {
    let p = Path::new(path);
    if path.is_empty()
        || path.contains('\0')
        || !p.components().all(|c| matches!(c, Component::Normal(_)))
    {
        Err(format!(
            "'{path}' is not a relative path inside the pipeline"
        ))
    } else {
        Ok(p)
    }
}

/// An absolute path without `..`.
fn absolute(path: &str) -> Result<&Path, String> {
    let p = Path::new(path);
    if !p.is_absolute() || path.contains('\0') || p.components().any(|c| c == Component::ParentDir)
    {
        Err(format!("'{path}' is not an absolute path without '..'"))
    } else {
        Ok(p)
    }
}

/// Cuts the files of `path` into batches under `<base>/<source>/`.
async fn cut(
    base: &Path,
    source: &str,
    path: &Path,
    records: u32,
    settle: std::time::Duration,
    skip: &[String],
) -> Result<DataAnswer, String> {
    let mut files = Vec::new();
    let mut entries = tokio::fs::read_dir(path).await.map_err(|e| io(path, e))?;
    let now = std::time::SystemTime::now();
    while let Some(e) = entries.next_entry().await.map_err(|e| io(path, e))? {
        let meta = e.metadata().await.map_err(|er| io(&e.path(), er))?;
        if !meta.is_file() || skip.iter().any(|s| *s == *e.file_name().to_string_lossy()) {
            continue;
        }
        // A file still being written waits until it has been left alone for `settle`.
        let settled = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= settle);
        if settle.is_zero() || settled {
            files.push(e.path());
        }
    }
    files.sort();
    let records = records.max(1) as usize;
    let mut batches = Vec::new();
    for f in files {
        let text = tokio::fs::read_to_string(&f).await.map_err(|e| io(&f, e))?;
        let lines: Vec<&str> = text.lines().collect();
        let stem = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (i, chunk) in lines.chunks(records).enumerate() {
            let batch = format!("{stem}:{i}");
            let rel = Path::new(source).join(batch_dir(&batch));
            let dir = base.join(&rel);
            let part = dir.join("part");
            if tokio::fs::metadata(&part).await.is_err() {
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(|e| io(&dir, e))?;
                let mut body = chunk.join("\n");
                body.push('\n');
                let tmp = dir.join(".part");
                tokio::fs::write(&tmp, body)
                    .await
                    .map_err(|e| io(&tmp, e))?;
                tokio::fs::rename(&tmp, &part)
                    .await
                    .map_err(|e| io(&part, e))?;
            }
            batches.push((batch, rel.to_string_lossy().into_owned()));
        }
    }
    Ok(DataAnswer {
        batches,
        ..DataAnswer::default()
    })
}

/// A batch id as a file or directory name (`/` → `~`).
pub fn batch_dir(batch: &str) -> String {
    batch.replace('/', "~")
}

/// Stages `inputs` in `dest`: one input's files directly, several side by side as
/// `<name>~<file>`.
async fn stage_all(base: &Path, inputs: &[BatchData], dest: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(dest)
        .await
        .map_err(|e| io(dest, e))?;
    if let [one] = inputs {
        return stage(base, &one.data, dest).await;
    }
    for input in inputs {
        let name = plain(&input.name)?;
        let sub = dest.join(name);
        stage(base, &input.data, &sub).await?;
        let mut files = tokio::fs::read_dir(&sub).await.map_err(|e| io(&sub, e))?;
        while let Some(f) = files.next_entry().await.map_err(|e| io(&sub, e))? {
            let to = dest.join(format!("{name}~{}", f.file_name().to_string_lossy()));
            tokio::fs::rename(f.path(), &to)
                .await
                .map_err(|e| io(&to, e))?;
        }
        tokio::fs::remove_dir(&sub).await.map_err(|e| io(&sub, e))?;
    }
    Ok(())
}

/// Makes a batch's files appear in `to` (made if missing): hard links where the batch is on
/// this host (a program never writes its input), copies where that fails, the carried bytes
/// otherwise.
async fn stage(base: &Path, data: &Carried, to: &Path) -> Result<(), String> {
    tokio::fs::create_dir_all(to).await.map_err(|e| io(to, e))?;
    match data {
        Carried::Local(dir) => {
            let from = base.join(relative(dir)?);
            let mut entries = tokio::fs::read_dir(&from).await.map_err(|e| io(&from, e))?;
            while let Some(e) = entries.next_entry().await.map_err(|e| io(&from, e))? {
                if !e
                    .file_type()
                    .await
                    .map_err(|er| io(&e.path(), er))?
                    .is_file()
                {
                    continue;
                }
                let dest = to.join(e.file_name());
                if tokio::fs::hard_link(e.path(), &dest).await.is_err() {
                    tokio::fs::copy(e.path(), &dest)
                        .await
                        .map_err(|er| io(&dest, er))?;
                }
            }
        }
        Carried::Files(files) => {
            for f in files {
                let dest = to.join(plain(&f.name)?);
                tokio::fs::write(&dest, &f.content)
                    .await
                    .map_err(|e| io(&dest, e))?;
            }
        }
    }
    Ok(())
}

/// The files of `dir`, at most [`MAX_CARRIED_BYTES`] in all.
async fn read_files(dir: &Path) -> Result<Vec<DataFile>, String> {
    let mut files = Vec::new();
    let mut total = 0usize;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(|e| io(dir, e))?;
    while let Some(e) = entries.next_entry().await.map_err(|e| io(dir, e))? {
        if !e
            .file_type()
            .await
            .map_err(|er| io(&e.path(), er))?
            .is_file()
        {
            continue;
        }
        let content = tokio::fs::read(e.path())
            .await
            .map_err(|er| io(&e.path(), er))?;
        let name = e.file_name().to_string_lossy().into_owned();
        total += content.len() + name.len();
        if total > MAX_CARRIED_BYTES {
            return Err(format!(
                "{}: a batch carried between hosts holds at most {MAX_CARRIED_BYTES} bytes; \
                 make the batches smaller (`records`) or place the units on one host",
                dir.display()
            ));
        }
        files.push(DataFile { name, content });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

/// Writes a carried program (0755) unless it holds those bytes already.
async fn write_program(path: &Path, content: &[u8]) -> Result<(), String> {
    if tokio::fs::read(path).await.ok().as_deref() == Some(content) {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io(dir, e))?;
    let path = path.to_path_buf();
    let bytes = content.to_vec();
    tokio::task::spawn_blocking(move || {
        crate::fsutil::write_atomic(&path, &bytes, 0o755, false).map_err(|e| io(&path, e))
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Runs `program input output` with its stderr in `<work>/stderr.log`; Ok once it exited 0
/// within `timeout`. Killed when the request is dropped (its session ended).
async fn run(
    program: &Path,
    input: &Path,
    output: &Path,
    work: &Path,
    timeout: std::time::Duration,
    limits: Limits,
) -> Result<(), String> {
    let stderr_path = work.join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).map_err(|e| io(&stderr_path, e))?;
    let mut command = if limits == Limits::default() {
        tokio::process::Command::new(program)
    } else {
        // The shell sets the limits, then becomes the program (its path and arguments are
        // arguments of the shell, never part of its script).
        let mut script = String::new();
        if let Some(kib) = limits.memory_kib {
            script.push_str(&format!("ulimit -v {kib} && "));
        }
        if let Some(secs) = limits.cpu_seconds {
            script.push_str(&format!("ulimit -t {secs} && "));
        }
        script.push_str("exec \"$0\" \"$@\"");
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(script).arg(program);
        c
    };
    let mut child = command
        .arg(input)
        .arg(output)
        .current_dir(work)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let ended = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(s)) if s.success() => return Ok(()),
        Ok(Ok(s)) => format!("{} ended with {s}", program.display()),
        Ok(Err(e)) => format!("{}: {e}", program.display()),
        Err(_) => format!("{} took longer than {timeout:?}", program.display()),
    };
    let mut tail = String::new();
    if let Ok(mut f) = tokio::fs::File::open(&stderr_path).await {
        let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
        let skip = len.saturating_sub(STDERR_TAIL as u64);
        let mut buf = Vec::new();
        if tokio::io::AsyncSeekExt::seek(&mut f, std::io::SeekFrom::Start(skip))
            .await
            .is_ok()
        {
            let _ = f.read_to_end(&mut buf).await;
        }
        tail = String::from_utf8_lossy(&buf).trim().to_string();
    }
    if tail.is_empty() {
        Err(ended)
    } else {
        Err(format!("{ended}: {tail}"))
    }
}

/// The path of `<base>` for a pipeline: `<root>/pipelines/<cluster>/<pipeline>`.
pub fn pipeline_dir(root: &Path, pipeline: &str) -> Result<PathBuf, String> {
    Ok(root.join("pipelines").join(relative(pipeline)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_stay_inside() {
        assert!(plain("a:0").is_ok());
        for bad in ["", ".", "..", "a/b", "a\0"] {
            assert!(plain(bad).is_err(), "{bad:?}");
        }
        assert!(relative("c/p").is_ok());
        for bad in ["", "/etc", "../x", "a/../../b", "./a"] {
            assert!(relative(bad).is_err(), "{bad:?}");
        }
        assert!(absolute("/data/in").is_ok());
        for bad in ["data", "/data/../etc"] {
            assert!(absolute(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_request_cannot_leave_the_pipeline_directory() {
        let root = tempfile::tempdir().expect("tempdir");
        let secret = root.path().join("secret");
        std::fs::create_dir_all(&secret).expect("mkdir");
        std::fs::write(secret.join("key"), "x").expect("write");
        for dir in ["../../../secret", "/etc"] {
            let e = serve(
                root.path(),
                DataRequest {
                    pipeline: "c/p".into(),
                    op: DataOp::Fetch { dir: dir.into() },
                },
            )
            .await
            .expect_err(dir);
            assert!(e.contains("not a relative path"), "{e}");
        }
        let e = serve(
            root.path(),
            DataRequest {
                pipeline: "../x".into(),
                op: DataOp::Fetch { dir: "a".into() },
            },
        )
        .await
        .expect_err("pipeline");
        assert!(e.contains("not a relative path"), "{e}");
    }
}
