"""torch.hub entrypoints, loaded from this checkout in a fresh process, offline."""
import os
import subprocess
import sys
import textwrap


def test_hub_entrypoints_from_a_fresh_process(repo_root, data_root):
    code = textwrap.dedent(f"""
        import numpy as np, torch
        repo = {str(repo_root)!r}
        import importlib.util, inspect
        spec = importlib.util.spec_from_file_location("hubconf_under_test", repo + "/hubconf.py")
        hubconf = importlib.util.module_from_spec(spec); spec.loader.exec_module(hubconf)
        entry = {{n for n, f in vars(hubconf).items() if inspect.isfunction(f) and not n.startswith("_")}}
        assert entry == {{"patchnet", "patchnet_tracker", "skip_frame_tracker"}}, entry
        assert all(getattr(hubconf, n).__doc__ for n in entry)  # what torch.hub.help shows
        assert "torch" in hubconf.dependencies
        m = torch.hub.load(repo, "patchnet", source="local", pretrained=True)
        s, o = m(torch.rand(2, 3, 64, 64) * 255, torch.rand(2, 3, 119, 119) * 255)
        assert s.shape == (2, 1, 7, 7) and o.shape == (2, 4, 7, 7)
        from patchnet_zoo.data.readers import read_folder_sequence
        seq = read_folder_sequence({str(data_root / "sot" / "Surfer")!r})
        t = torch.hub.load(repo, "patchnet_tracker", source="local")
        t.init(seq.frame(0), seq.boxes[0])
        box = t.update(seq.frame(1))
        assert np.isfinite(box).all()
        k = torch.hub.load(repo, "skip_frame_tracker", source="local", base="kcf", key_frame_interval=3)
        k.init(seq.frame(0), seq.boxes[0])
        for i in range(1, 4):
            k.update(seq.frame(i))
        assert k.stats["frames"] == 4
        print("ok")
    """)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo_root, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("ok")
