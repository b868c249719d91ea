// Pipelines (docs/pipelines.md): the example definition the console's editor starts from — the
// first example of docs/pipelines.md, as written there (a test checks they agree).
export const EXAMPLE_PIPELINE = `name = "sorted"

[sources.files]              # the files of a directory on one host, 100 lines to a batch
kind = "dir"
host = "h1"
path = "/data/in"
records = 100                # watch = true: files added later too (then the source never ends)

[units.filter]               # runs per batch, as batches come
program = "/usr/local/bin/filter"
kind = "non-blocking"
replicas = 3
hosts = ["h1", "h2", "h3"]   # spread over these (empty: any host of the cluster)
timeout = "5m"               # per batch (default 10m)
inputs = ["files"]

[units.sort]                 # runs once, on all of its input, when every upstream batch is done
program = { stack = "demo", service = "hello", program = "sort.sh" }
kind = "blocking"
inputs = ["filter"]

[sinks.out]                  # one file per batch, named by the batch
kind = "dir"
host = "h1"
path = "/data/out"
inputs = ["sort"]
`
