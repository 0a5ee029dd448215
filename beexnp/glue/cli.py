"""The ``data`` and ``download`` commands of ``python -m beexnp``.

    python -m beexnp data --task sst2 [--json] [--glue-dir PATH]
    python -m beexnp download --tasks sst2,cola,... [--dir data/glue] [--base-url URL]
                              [--no-checksum] [--force] [--quiet]
"""
import json
import sys

from beexnp.glue.download import BASE_URL_ENV, DownloadError, base_url, download_task, parse_task_list
from beexnp.glue.location import DEFAULT_DIR
from beexnp.glue.reader import GlueFormatError
from beexnp.glue.summary import describe_task, format_summary


def _data(args):
    summary = describe_task(args.task, args.glue_dir)   # a missing or malformed file: beexnp.cli says why
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _download(args):
    try:
        tasks = parse_task_list(args.tasks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    url = base_url(args.base_url)
    status = 0
    for task in tasks:
        try:
            result = download_task(task, args.dir, url, checksums=False if args.no_checksum else None,
                                   force=args.force, progress=not args.quiet)
        except (DownloadError, GlueFormatError, ValueError, OSError) as err:
            print(f"{task.name}: failed: {err}", file=sys.stderr)
            status = 1
            continue
        note = " (use --force to replace it)" if result == "present" else ""
        print(f"{task.name}: {result} in {args.dir}/{task.dir}{note}")
    return status


def register(subparsers):
    """Add the ``data`` and ``download`` commands."""
    p = subparsers.add_parser("data", help="split sizes, label distribution and token lengths of a GLUE task",
                              description="Read every split of a GLUE task and print its size, label distribution "
                                          "and token-length percentiles (the package's tokenizer).")
    p.add_argument("--task", required=True, help="task name: cola, sst2, mrpc, stsb, qqp, mnli, qnli, rte, wnli")
    p.add_argument("--glue-dir", default=None, help="GLUE directory (default: $GLUE_DIR, then data/glue)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_data)

    p = subparsers.add_parser("download", help="download GLUE tasks (MRPC assembled as the official script does)",
                              description="Download GLUE tasks from the official addresses into --dir: each file "
                                          "is written to a temporary name and renamed when whole, each archive is "
                                          "checked before it is unpacked, MRPC is assembled from the MSR files.")
    p.add_argument("--tasks", required=True, help="comma-separated task names, or 'all'")
    p.add_argument("--dir", default=str(DEFAULT_DIR), help="GLUE directory to fill (default: %(default)s)")
    p.add_argument("--base-url", default=None,
                   help=f"address to download from instead of the official one (also ${BASE_URL_ENV})")
    p.add_argument("--no-checksum", action="store_true",
                   help="skip the sha256 check (zips are still tested before extraction)")
    p.add_argument("--force", action="store_true", help="replace tasks already present")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_download)
