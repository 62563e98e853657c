import subprocess
import sys

from glsim_core.cli import COMMANDS, build_parser, main


def test_help_lists_every_registered_command(capsys):
    parser = build_parser()
    help_text = parser.format_help()
    for name in COMMANDS:
        assert name in help_text


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error():
    proc = subprocess.run([sys.executable, "-m", "glsim_core", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_value_is_one_line_error(capsys, tmp_path):
    assert main(["run", "--only", "99_nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no notebook matches")
