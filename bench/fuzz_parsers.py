"""Coverage-guided fuzzing (atheris) of the parsers that read attacker bytes, for a bounded time.

Targets:
  tar       the layer tar reader (`ci_gate.sources.tarstream.TarReader`), members read and skipped
  manifest  index → manifest → config resolution (`ci_gate.sources.oci_layout.resolve_image`), with
            digest checks switched off in this process so the fuzzer reaches the parsing behind them
            (the checks themselves are a comparison of two strings)
  policy    the policy loader (`ci_gate.policy.documents.check_text`), YAML and JSON
  config    `.ci-gate.yaml` loading (`ci_gate.cli.settings.load_config_file`)

Each target states which exceptions are answers (SourceError, TarFormatError, UsageError...);
anything else is a finding, and atheris stops with the input that caused it.

    pip install atheris
    python bench/fuzz_parsers.py TARGET -max_total_time=600 [-rss_limit_mb=2048] [CORPUS_DIR]

Seeds come from real documents (the built-in policy packs, a tar and OCI documents written here).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from ci_gate.cli.settings import load_config_file
    from ci_gate.errors import CiGateError
    from ci_gate.policy.documents import check_text
    from ci_gate.sources import oci_layout
    from ci_gate.sources.interface import SourceOptions
    from ci_gate.sources.tarstream import MetadataBudget, TarFormatError, TarReader

_SEPARATOR = b"\n--blob--\n"


def _with_valid_checksums(data: bytes) -> bytes:
    """The input with each header block's checksum made right, following the ustar size fields as
    the reader would: random bytes almost never pass a checksum, and the fuzzer must get past it."""
    fixed = bytearray(data)
    position = 0
    for _ in range(256):
        block = fixed[position:position + 512]
        if len(block) < 512 or not any(block):
            break
        block[148:156] = b" " * 8
        fixed[position + 148:position + 156] = b"%06o\0 " % (sum(block) & 0o777777)
        try:
            size = int(bytes(block[124:136]).split(b"\0", 1)[0].strip() or b"0", 8)
        except ValueError:
            size = 0
        position += 512 + (max(size, 0) + 511) // 512 * 512
    return bytes(fixed)


def fuzz_tar(data: bytes) -> None:
    try:
        archive = TarReader(io.BytesIO(_with_valid_checksums(data)), MetadataBudget(1 << 20))
        for number, member in enumerate(archive):
            assert member.size >= 0 and len(member.name.encode("utf-8")) <= 4096
            if number % 2:
                archive.read(member.size)
    except TarFormatError:
        pass


def fuzz_manifest(data: bytes) -> None:
    blobs = data.split(_SEPARATOR)
    queue = list(blobs[1:])

    def fetch(descriptor: oci_layout.Descriptor, what: str) -> bytes:
        if not queue:
            raise oci_layout.SourceError("no more blobs")
        return queue.pop(0)

    top = oci_layout.Descriptor(media_type="", digest="sha256:" + "0" * 64, size=None)
    try:
        document = oci_layout.parse_json_object(blobs[0], "index", "fuzz")
        chosen = oci_layout.select_layout_entry(document, None, "fuzz")
        if isinstance(chosen, list):
            chosen = oci_layout.select_platform(chosen, SourceOptions(), "fuzz")
        oci_layout.resolve_image(fetch, top if not queue else chosen, SourceOptions(), "fuzz")
    except CiGateError:
        pass


def fuzz_policy(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    for source in ("fuzz.yaml", "fuzz.json"):
        check_text(text, source)


_CONFIG_DIR = Path(tempfile.mkdtemp(prefix="ci-gate-fuzz-"))


def fuzz_config(data: bytes) -> None:
    (_CONFIG_DIR / ".ci-gate.yaml").write_bytes(data)
    with contextlib.suppress(CiGateError):
        load_config_file(_CONFIG_DIR)


def _seeds(target: str) -> list[bytes]:
    if target == "tar":
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for name, payload in (("etc/os-release", b"ID=debian\n"), ("very/" * 30 + "long", b"x" * 700)):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                archive.addfile(info, io.BytesIO(payload))
            link = tarfile.TarInfo("l")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/os-release"
            archive.addfile(link)
        return [out.getvalue()]
    if target == "manifest":
        digest = "sha256:" + "a" * 64
        index = {"schemaVersion": 2, "manifests": [{"mediaType": oci_layout.OCI_MANIFEST, "digest": digest,
                                                    "size": 10, "platform": {"os": "linux", "architecture": "amd64"}}]}
        manifest = {"schemaVersion": 2, "mediaType": oci_layout.OCI_MANIFEST,
                    "config": {"mediaType": oci_layout.OCI_CONFIG, "digest": digest, "size": 10},
                    "layers": [{"mediaType": oci_layout.OCI_LAYER_GZIP, "digest": digest, "size": 10}]}
        config = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [digest]}}
        return [_SEPARATOR.join(json.dumps(document).encode() for document in (index, manifest, manifest, config))]
    if target in ("policy", "config"):
        packs = ROOT / "ci_gate" / "policy" / "packs"
        seeds = [path.read_bytes() for path in sorted(packs.glob("*.yaml"))]
        return seeds if target == "policy" else [b"policy: builtin:dod\nfail-on: warn\ngate:\n  junit: out.xml\n"]
    return []


TARGETS = {"tar": fuzz_tar, "manifest": fuzz_manifest, "policy": fuzz_policy, "config": fuzz_config}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [atheris/libFuzzer options] [CORPUS_DIR]")
    target = sys.argv[1]
    if target == "manifest":
        # Off in this process only: the fuzzer cannot forge digests, and what it should reach is behind them.
        oci_layout.verify_document = lambda *arguments, **keywords: None  # type: ignore[assignment]
    arguments = [sys.argv[0], *sys.argv[2:]]
    corpus = next((argument for argument in arguments[1:] if not argument.startswith("-")), None)
    if corpus is not None:
        Path(corpus).mkdir(parents=True, exist_ok=True)
        for number, seed in enumerate(_seeds(target)):
            (Path(corpus) / f"seed-{number}").write_bytes(seed)
    atheris.Setup(arguments, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
