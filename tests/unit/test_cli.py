from sdnmip import cli


def test_unknown_command_is_refused_with_usage(capsys):
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert "unknown command 'no-such-command'" in err
    assert "testbed" in err


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_a_reader_that_goes_away_stops_the_command_quietly() -> None:
    import subprocess
    import sys

    # `sdnmip check-flows --help | head -1`: the pipe closes while the command still writes.
    code = (
        "import sys\n"
        "from sdnmip import cli\n"
        "cli.COMMANDS['spam'] = ('tests.unit.spam_cmd', 'x')\n"
        "sys.exit(cli.main(['spam']))\n"
    )
    p = subprocess.run(
        f'{sys.executable} -c "{code}" | head -c 10',
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert p.stdout == "x" * 10
    assert "Traceback" not in p.stderr and "BrokenPipe" not in p.stderr, p.stderr
