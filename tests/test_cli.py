from memsnn.experiments.cli import main


def test_devices_table_lists_every_preset(capsys):
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    for name in ("srtio3", "ideal", "pcm", "rram"):
        assert f"\n{name}" in out
    assert "Tiotto" in out


def test_devices_plot_writes_three_pngs_per_preset(tmp_path, capsys):
    assert main(["devices", "--plot", str(tmp_path), "--preset", "srtio3", "--preset", "ideal"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(f"{n}_{k}.png" for n in ("srtio3", "ideal") for k in ("pulse_response", "volatile", "drift"))
    # a second run refuses to overwrite before doing any work
    try:
        main(["devices", "--plot", str(tmp_path), "--preset", "ideal"])
    except SystemExit as stop:
        assert "already exist" in str(stop.code)
    else:
        raise AssertionError("expected a refusal to overwrite")
