"""Device spec files: every built-in spec passes the generic checks; bad specs fail by file and field."""

from __future__ import annotations

import pytest
import yaml

import roofline
from roofline.devices import list_devices, load_device, spec_dir, validate_spec
from roofline.errors import SpecError, UnknownDeviceError

# the four ridge points the MobileNetV4 paper fitted to measurements (Table 16)
MNV4_RIDGES = {"pixel6_cpu": 31.2, "galaxy_s23_cpu": 39.7, "pixel4_dsp": 347.3, "pixel8_edgetpu": 433.8}
DATASHEET = ["jetson_nano_gpu", "jetson_orin_nano", "adreno_640", "mali_g78_mp20", "apple_a15_ane",
             "rpi4_cpu", "snapdragon855_hexagon", "snapdragon865_hexagon"]  # fmt: skip


def test_required_devices_ship():
    assert set(MNV4_RIDGES) | set(DATASHEET) <= set(list_devices())


# the ridge points (MACs/byte) of the datasheet specs as their notes work them out from the cited sources,
# to the digits written there: a mistyped peak or bandwidth in a spec file moves its ridge point off these
DATASHEET_RIDGES = {
    "adreno_640": {"fp16": 26.3, "fp32": 13.2},  # 898.5e9 / 34.13e9; half the fp16 rate
    "apple_a15_ane": {"fp16": 231},  # 7.9e12 / 34.13e9
    "coral_edgetpu": {"int8": 4000},  # 2.0e12 / 0.5e9 (USB 3.0 payload)
    "jetson_nano_gpu": {"fp16": 9.2, "fp32": 4.6},  # 236e9 / 25.6e9
    "jetson_orin_nano": {"int8": 147, "fp16": 74, "fp32": 9.4},  # 10.0e12 / 68e9
    "mali_g78_mp20": {"fp16": 21.2, "fp32": 10.6},  # 1085e9 / 51.2e9
    "rpi4_cpu": {"fp32": 1.9},  # 24e9 / 12.8e9
    "snapdragon855_hexagon": {"int8": 102.6},  # 3.5e12 / 34.13e9
    "snapdragon865_hexagon": {"int8": 170},  # 7.5e12 / 44e9
}


def test_every_spec_file_is_a_built_in_device():
    files = sorted(p.stem for p in spec_dir().iterdir() if p.suffix in (".yaml", ".yml"))
    assert files == list_devices() and len(files) >= 20


@pytest.mark.parametrize("name", list_devices())
def test_builtin_spec(name):
    d = load_device(name)
    raw = yaml.safe_load((spec_dir() / f"{name}.yaml").read_text(encoding="utf-8"))
    assert d.name == raw["name"] == name and d.default_precision in d.precisions
    assert d.sources and all(len(s.split()) >= 3 for s in d.sources)  # a citation, not a placeholder
    assert d.path.endswith(f"{name}.yaml")
    for p in d.precisions:
        assert d.ridge(p) > 0


@pytest.mark.parametrize("name,ridges", DATASHEET_RIDGES.items())
def test_datasheet_ridge_points_are_what_their_sources_give(name, ridges):
    d = load_device(name)
    assert d.precisions == sorted(ridges)
    for p, ridge in ridges.items():
        assert d.ridge(p) == pytest.approx(ridge, rel=0.015), p


def test_every_absolute_datasheet_spec_has_its_ridge_points_checked():
    # a new spec with a peak and a bandwidth (not a *_fitted sibling) adds its ridge points above
    absolute = {n for n in list_devices() if not n.endswith("_fitted") and not load_device(n).is_relative()}
    assert absolute == set(DATASHEET_RIDGES)


@pytest.mark.parametrize("name,ridge", MNV4_RIDGES.items())
def test_mnv4_fitted_ridge_points(name, ridge):
    d = load_device(name)
    assert d.ridge("int8") == ridge and d.provenance == "fitted" and d.is_relative("int8")


def test_datasheet_specs_are_absolute():
    from roofline.public.shipped_fits import DATASHEET as FITTED_TO_PUBLISHED

    for name in DATASHEET:
        d = load_device(name)
        assert not d.is_relative(), name
        # datasheet numbers; those with published latencies add two fitted efficiencies and a fixed cost
        assert d.provenance == ("fitted" if name in FITTED_TO_PUBLISHED else "datasheet"), name
        assert bool(d.efficiency) == (name in FITTED_TO_PUBLISHED), name


def test_datasheet_specs_are_within_2x_of_the_published_latencies_they_were_fitted_to():
    # lut/published_latencies and Table 6: refitting reproduces the shipped numbers, and every published
    # network lands within 0.5-2x (before: 0.03-0.6x, datasheet peaks that runtimes never reach)
    from roofline.public.shipped_fits import DATASHEET as FITTED_TO_PUBLISHED
    from roofline.public.shipped_fits import datasheet_rows, fit_datasheet, main

    for name in FITTED_TO_PUBLISHED:
        shipped = load_device(name)
        again = fit_datasheet(name).spec
        for k in ("compute", "memory"):
            assert 0 < shipped.efficiency[k] <= 1 and again.efficiency[k] == pytest.approx(shipped.efficiency[k],
                                                                                           rel=2e-3)  # fmt: skip
        net = shipped.calibration["network"]["overhead_s"]
        assert 0 <= net <= 0.01 and again.calibration["network"]["overhead_s"] == pytest.approx(net, rel=2e-3, abs=1e-6)
        rows = datasheet_rows(name)
        for model, published in zip(rows["model"], rows["latency_ms"]):  # at the published rows' precision
            ratio = roofline.predict(model, shipped, precision=rows.attrs["precision"]).totals["latency_ms"].iloc[0]
            ratio /= published
            assert 0.5 <= ratio <= 2.0, (name, ratio)
        assert shipped.reached_ridge() == pytest.approx(
            shipped.ridge() * shipped.efficiency["compute"] / shipped.efficiency["memory"])  # fmt: skip
    assert main(["--datasheet"]) == 0  # the command that prints what the spec files hold


def test_shipped_fitted_specs_say_how_they_were_fitted():
    # a spec fitted to measurements carries its data and its cross-validated error
    fitted = [load_device(n) for n in list_devices() if load_device(n).calibration]
    assert "coral_edgetpu" in {d.name for d in fitted}
    for d in fitted:
        assert d.provenance == "fitted" and d.fit["rows"] >= 3 and 0 <= d.fit["cv"]["median_abs_error"] < 1


def test_coral_is_within_2x_of_its_published_times():
    # Coral's own table (lut/coral_edgetpu): the memory model (weights and activations in ~8 MB of SRAM)
    # and the fitted fixed cost put the zoo networks it lists within 0.5-2x
    from roofline.public import load_public

    table = load_public("coral_edgetpu")
    rows = table[table["zoo_name"].notna() & (table["device"] == "desktop_cpu_usb_edgetpu")]
    assert len(rows) == 2
    for zoo_name, published in zip(rows["zoo_name"], rows["latency_ms"]):
        predicted = roofline.predict(zoo_name, "coral_edgetpu").totals["latency_ms"].iloc[0]
        assert 0.5 <= predicted / published <= 2.0, (zoo_name, predicted, published)


def test_specs_found_in_the_installed_package():
    assert (spec_dir() / "pixel6_cpu.yaml").is_file()


def test_device_name_typo_suggests_the_close_match():
    with pytest.raises(UnknownDeviceError, match="did you mean 'pixel6_cpu'"):
        load_device("pixel6_cup")
    with pytest.raises(KeyError):  # also a KeyError
        load_device("nothing_like_it")


GOOD = {"name": "mydev", "display_name": "My device", "kind": "gpu", "default_precision": "fp16",
        "peak_macs_per_s": {"fp16": 1.0e12}, "bandwidth_bytes_per_s": 5.0e10, "provenance": "datasheet",
        "sources": ["my datasheet, p. 3"]}  # fmt: skip


@pytest.mark.parametrize(
    "change,message",
    [
        (
            {"peak_macs_per_s": {"fp16": 1.0e12}, "bandwith_bytes_per_s": 1},
            r"field 'bandwith_bytes_per_s': unknown field.*did you mean 'bandwidth_bytes_per_s'",
        ),
        ({"sources": []}, r"field 'sources': missing"),
        ({"sources": "a datasheet"}, r"field 'sources': must be a non-empty list"),
        ({"bandwidth_bytes_per_s": -5}, r"field 'bandwidth_bytes_per_s': must be a positive number, got -5"),
        ({"peak_macs_per_s": {"fp16": 0}}, r"field 'peak_macs_per_s.fp16': must be a positive number"),
        ({"peak_macs_per_s": {"fp61": 1e12}}, r"field 'peak_macs_per_s.fp61': unknown precision.*did you mean 'fp16'"),
        ({"ridge_macs_per_byte": {"fp16": 30.0}}, r"field 'ridge_macs_per_byte.fp16': 30 is inconsistent with .* = 20"),
        ({"kind": "tpu"}, r"field 'kind': must be one of \['cpu', 'gpu', 'dsp', 'npu'\]"),
        ({"default_precision": "int8"}, r"field 'default_precision': 'int8' has neither a peak nor a ridge point"),
        ({"name": "other"}, r"field 'name': must equal the file name 'mydev'"),
        ({"bandwidth_bytes_per_s": "fast"}, r"field 'bandwidth_bytes_per_s': must be a positive number, got 'fast'"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path, change, message):
    path = tmp_path / "mydev.yaml"
    path.write_text(yaml.safe_dump({**GOOD, **change}))
    with pytest.raises(SpecError, match=r"^mydev.yaml: " + message):
        load_device(path)


def _spec_file(folder, stem, **fields):
    path = folder / stem
    path.write_text(yaml.safe_dump({**GOOD, **fields}))
    return path


def test_two_spec_files_for_one_device_are_refused(tmp_path, monkeypatch):
    import roofline.devices.registry as registry

    monkeypatch.setattr(registry, "spec_dir", lambda: tmp_path)
    _spec_file(tmp_path, "mydev.yaml")
    _spec_file(tmp_path, "other.yaml", name="other")
    assert list_devices() == ["mydev", "other"]
    # a second file declaring a built-in name: refused where it is loaded, one line naming the file
    _spec_file(tmp_path, "mydev_v2.yaml")
    with pytest.raises(SpecError, match=r"^mydev_v2.yaml: field 'name': must equal the file name 'mydev_v2', "
                                        r"got 'mydev'$"):  # fmt: skip
        load_device("mydev_v2")
    # two files for one name (by suffix or by case): refused where the built-in specs are listed
    for duplicate in ("mydev.yml", "MyDev.yaml"):
        path = _spec_file(tmp_path, duplicate, name=duplicate.split(".")[0])
        with pytest.raises(SpecError, match=r"both declare device .*one device, one spec file$") as exc:
            list_devices()
        assert "\n" not in str(exc.value)
        with pytest.raises(SpecError, match="both declare device"):
            load_device("other")
        path.unlink()


def test_a_user_spec_may_not_reuse_a_built_in_name_in_one_prediction(tmp_path):
    path = tmp_path / "pixel6_cpu.yaml"
    path.write_text((spec_dir() / "pixel6_cpu.yaml").read_text(encoding="utf-8").replace("31.2", "40.0"))
    assert load_device(path).ridge() == 40.0  # alone it is fine
    with pytest.raises(SpecError, match=r"pixel6_cpu.yaml both declare device 'pixel6_cpu': rename one") as exc:
        roofline.predict("mobilenet_v2_050", ["pixel6_cpu", str(path)])
    assert "\n" not in str(exc.value)
    twice = roofline.predict("mobilenet_v2_050", [str(path), load_device(path)]).totals  # one file twice: fine
    assert twice["latency_mac_equiv"].nunique() == 1


def test_good_user_spec_and_not_yaml(tmp_path):
    path = tmp_path / "mydev.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    d = load_device(str(path))
    assert d.ridge() == 20.0 and d.peak("fp16") == 1e12
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match=r"^broken.yaml: not valid YAML"):
        load_device(bad)


def test_device_table_lists_every_device():
    table = roofline.device_table()
    assert list(table.name) == list_devices()
    assert (table.ridge_macs_per_byte > 0).all()


def test_the_shipped_table6_fits_are_what_their_generator_fits():
    # device_specs/*_fitted.yaml come from roofline/public/shipped_fits.py on lut/mobilenetv4_table6: refit one
    from roofline.public.shipped_fits import TABLE6, fit_table6

    shipped = load_device("pixel6_cpu_fitted")
    again = fit_table6("pixel6_cpu")
    assert {TABLE6[d][0] for d in TABLE6} <= set(list_devices())
    for kind, entry in shipped.calibration.items():
        for field, value in entry.items():
            expected = value if value is None else pytest.approx(value, rel=1e-3, abs=1e-9)
            assert again.calibration[kind][field] == expected, (kind, field)
    cv, cv_again = shipped.fit["cv"], again.fit["cv"]
    assert cv["median_abs_error"] == pytest.approx(cv_again["median_abs_error"], rel=1e-2)
    # one network's held-out error sits at 10.00%: a solver's last digit may move it across (one network, 1/11)
    assert abs(cv["within_10pct"] - cv_again["within_10pct"]) <= 1 / shipped.fit["rows"] + 1e-9
    assert roofline.predict("mobilenet_v2", shipped).totals["latency_ms"].iloc[0] == pytest.approx(5.0, rel=0.2)


@pytest.mark.parametrize("efficiency,message", [
    ({"compute": -1}, "must be a positive number"), ({"speed": 0.5}, "must map compute and/or memory"), (0.5, "must map"),
])  # fmt: skip
def test_bad_efficiencies_are_rejected(efficiency, message):
    with pytest.raises(SpecError, match=message):
        validate_spec({**GOOD, "efficiency": efficiency}, "mydev.yaml")
    ridge_only = {k: v for k, v in GOOD.items() if k not in ("peak_macs_per_s", "bandwidth_bytes_per_s")}
    with pytest.raises(SpecError, match="efficiency"):
        validate_spec({**ridge_only, "ridge_macs_per_byte": {"fp16": 20}, "efficiency": {"memory": 0.5}}, "mydev.yaml")
