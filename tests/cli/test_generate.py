"""``flowloom generate`` as a process, against a local server speaking OpenAI's protocol:
a draft repaired once is saved to the local account and written with --output; bad
arguments exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from drafts import BROKEN, GOOD
from providers.fake_servers import API_KEY, FakeServer
from servekit import cli


def flowloom(data_dir: Path, fake: FakeServer, *args: str) -> subprocess.CompletedProcess[str]:
    provider = {
        "FLOWLOOM_OPENAI_API_KEY": API_KEY,
        "FLOWLOOM_OPENAI_BASE_URL": fake.openai_base_url,
    }
    return cli(data_dir, *args, env=provider)


def test_generate_repairs_saves_and_writes_a_runnable_file(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.reset()
    fake.script_replies({"text": json.dumps(BROKEN)}, {"text": json.dumps(GOOD)})
    out = tmp_path / "shout.json"

    done = flowloom(tmp_path / "data", fake, "generate", "Say hi loudly", "--output", str(out))

    assert done.returncode == 0, done.stderr
    assert "attempt 1: invalid" in done.stdout
    assert "did you mean 'text.template'" in done.stdout
    assert "attempt 2: valid" in done.stdout
    assert "saved workflow 'Shout'" in done.stdout
    ran = flowloom(tmp_path / "data", fake, "run", str(out), "--json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["outputs"] == {"loud": {"text": "HI"}}


def test_generate_still_invalid_exits_1_and_bad_arguments_exit_2(
    tmp_path: Path, fake: FakeServer
) -> None:
    fake.reset()
    fake.script_replies({"text": json.dumps(BROKEN)})
    done = flowloom(tmp_path / "data", fake, "generate", "x", "--repairs", "0", "--json")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert (record["valid"], record["workflow_id"]) == (False, None)
    assert record["attempts"][0]["outcome"] == "invalid"

    wrong = flowloom(tmp_path / "data", fake, "generate", "x", "--provider", "skynet")
    assert wrong.returncode == 2
    assert "--provider" in wrong.stderr
