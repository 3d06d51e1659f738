/** The end of `neuromfa --help`: what the environment changes and what the exit codes mean. */
export const HELP_FOOTER = `
Environment:
  HF_ENDPOINT                 base URL of the Hugging Face hub (default https://huggingface.co)
  HF_TOKEN                    sent as Authorization: Bearer to HF_ENDPOINT only (gated repositories)
  NEUROMFA_CACHE              cache of hub listings, byte ranges and results (default ~/.cache/neuromfa)
  HF_HUB_CACHE, HF_HOME       an existing Hugging Face cache read before downloading (default ~/.cache/huggingface/hub)
  NEUROMFA_HUB_CONCURRENCY    hub range requests in flight per checkpoint (1-256)
  NEUROMFA_HUB_GAP_KB         read through gaps up to this many KiB between wanted rows instead of a new request
  NEUROMFA_NATS_PASS          password for --nats-user
  NEUROMFA_NATS_TOKEN         token for NATS (or --nats-token)
  NEUROMFA_PRINT_KERNELS=1    print each GPU kernel program once (debugging --backend)

Exit codes (proto/errors.ts exitCodeFor):
  0  success
  1  unexpected error (run with --debug for the stack trace)
  2  usage: a bad flag or argument, or a series out of training order
  3  bad input: an unreadable or malformed file, a series mixing models, or an input with no defined result
  4  integrity: checkpoints or results that are not what they claim (e.g. --resume DIR of another run)
  5  cluster: the workers failed for good (every worker gone)
`;
