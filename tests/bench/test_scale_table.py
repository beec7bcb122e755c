"""bench/scale.py reads the figures of sizes it does not re-measure back from the table it wrote."""

from __future__ import annotations

from bench.scale import SECTION, SizeResult, report, stored_from_doc


def _result(size: str, airings: int, *, imported: bool) -> SizeResult:
    return SizeResult(
        size=size,
        airings=airings,
        programs=airings // 1000,
        channels=4,
        generate_s=88.7,
        import_s=294.7 if imported else 0.0,
        import_cpu_s=120.5 if imported else 0.0,
        import_rows=airings if imported else 0,
        import_peak_rss_mb=301.0 if imported else 0.0,
        import_load="1.9, 2.0, 2.1" if imported else "",
        export_s=36.5,
        export_mb=128.0,
        export_rss_growth_mb=0.1,
        p50_ms={"programs (default)": 4.3, "program detail": 15.2, "dashboard (warm)": 19.5},
        cpu_ms={"programs (default)": 1.3, "program detail": 4.4, "dashboard (warm)": 6.4},
        dashboard_cold_ms=43.0,
        dashboard_cold_cpu_ms=13.0,
        load="11.0, 9.2, 6.6",
    )


def test_the_table_reads_back_as_the_results_that_wrote_it() -> None:
    results = {"57k": _result("57k", 56_845, imported=False), "5m": _result("5m", 5_000_000, imported=True)}
    doc = f"# Benchmarks\n\n<!-- bench:{SECTION} -->\n{report(results)}\n<!-- /bench:{SECTION} -->\n\n| other | 1 |\n"

    read = stored_from_doc(doc)

    assert read == results
    assert report(read) == report(results)


def test_a_doc_without_the_table_has_no_stored_sizes() -> None:
    assert stored_from_doc("# Benchmarks\n\n| measure | x |\n") == {}
