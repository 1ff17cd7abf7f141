"""Worker of tests/_faults.py: runs pickled fault cases from index START on, printing each index
before running it and appending ``(index, outcome)`` to the results file, so that the parent can
tell which case a crash or hang happened in. Run: python _fault_worker.py CASES RESULTS START."""

import os
import pickle
import resource
import sys


def run_one(case: dict) -> tuple:
    """``("ok", output)`` or ``("error", message)`` for one case (see _faults.run_cases)."""
    import onnxruntime as ort

    from scales_edge.runtime.library import get_library_path
    from scales_edge.runtime.session import make_session

    saved = os.environ.pop("SCALES_EDGE_KERNEL", None)
    if case["kernel"]:  # read when a kernel is created, i.e. with the session
        os.environ["SCALES_EDGE_KERNEL"] = case["kernel"]
    try:
        if case["mode"] == "ort":
            so = ort.SessionOptions()
            so.register_custom_ops_library(get_library_path())
            so.intra_op_num_threads = case["threads"]
            so.log_severity_level = 4
            sess = ort.InferenceSession(case["model"], so, providers=["CPUExecutionProvider"])
        else:
            sess = make_session(case["model"], threads=case["threads"])
        return "ok", sess.run(None, case["feeds"])[0]
    except Exception as exc:  # noqa: BLE001 - every error is an outcome to judge
        return "error", f"{type(exc).__name__}: {exc}"
    finally:
        os.environ.pop("SCALES_EDGE_KERNEL", None)
        if saved is not None:
            os.environ["SCALES_EDGE_KERNEL"] = saved


def main(cases_path: str, results_path: str, start: int) -> None:
    limit = int(os.environ.get("SCALES_EDGE_FAULT_MEMORY", 6 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # a huge allocation fails instead of swapping
    with open(cases_path, "rb") as f:
        cases = pickle.load(f)
    with open(results_path, "ab") as out:
        for i in range(start, len(cases)):
            print(i, flush=True)
            pickle.dump((i, run_one(cases[i])), out)
            out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
