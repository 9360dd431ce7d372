"""What the simulator serves: progress pictures, real MP4 clips, and the routes issue 12 forwards."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from tests.simulator.helpers import (
    fetch,
    finish,
    get_image,
    imagine,
    mp4_summary,
    png_base64,
    press,
    submit,
    wait_done,
    wait_status,
)

SLOW = 30.0


def contrast(img: Image.Image) -> float:
    """Blur evens a picture out: the spread of its grey levels shrinks."""
    return ImageStat.Stat(img.convert("L")).stddev[0]


def distance(a: Image.Image, b: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).mean)


def get_video(url: str) -> dict:
    resp = httpx.get(url)  # public, like a CDN
    assert resp.status_code == 200 and resp.headers["content-type"] == "video/mp4"
    return {**mp4_summary(resp.content), "bytes": resp.content}


# ---- progress images -----------------------------------------------------------------------


def test_in_progress_fetch_shows_a_blurred_picture_of_the_final_grid(simulator_session):
    sim = simulator_session
    sim.configure(step_seconds=SLOW)
    task_id = submit(sim, "submit/imagine", {"prompt": "a lighthouse at dusk"})["result"]
    running = wait_status(sim, task_id, "IN_PROGRESS", "20%")
    assert running["imageUrl"] == f"{sim.base_url}/mj/image/{task_id}/progress-20.png"
    early = get_image(sim, running["imageUrl"])

    assert finish(sim, task_id) == "SUCCESS"
    final = get_image(sim, fetch(sim, task_id).json()["imageUrl"])
    assert early.size == final.size  # the same picture, still forming
    assert ImageChops.difference(early.convert("RGB"), final.convert("RGB")).getbbox() is not None
    # Later steps are sharper and nearer the result; every step is blurrier than the result.
    late = get_image(sim, f"{sim.base_url}/mj/image/{task_id}/progress-80.png")
    assert contrast(early) < contrast(late) < contrast(final)
    assert distance(early, final) > distance(late, final) > 0
    # Seeded like the final image: the same step of the same task is the same picture.
    assert httpx.get(running["imageUrl"]).content == httpx.get(running["imageUrl"]).content
    assert sim.stats()["progress_images_served"] >= 3


def test_progress_images_of_an_upscale_and_the_knob(simulator_session):
    sim = simulator_session
    grid = imagine(sim)
    sim.configure(step_seconds=SLOW)
    upscale_id = press(sim, grid, "MJ::JOB::upsample::2::")["result"]
    running = wait_status(sim, upscale_id, "IN_PROGRESS")
    size = sim.config()["image_size"]
    assert get_image(sim, running["imageUrl"]).size == (size, size)

    sim.configure(progress_images=False)
    assert fetch(sim, upscale_id).json()["imageUrl"] is None
    for bad in ("progress-0", "progress-100", "progress-250"):
        assert httpx.get(f"{sim.base_url}/mj/image/{upscale_id}/{bad}.png").status_code == 404
    assert httpx.get(f"{sim.base_url}/mj/image/1234567890123456/progress-20.png").status_code == 404


def test_submitted_tasks_show_no_picture_yet(simulator_session):
    sim = simulator_session
    sim.configure(start_delay_seconds=SLOW)
    task_id = submit(sim, "submit/imagine", {"prompt": "not yet"})["result"]
    task = wait_status(sim, task_id, "SUBMITTED")
    assert task["imageUrl"] is None


# ---- videos --------------------------------------------------------------------------------


def test_video_from_a_prompt_and_a_first_frame(simulator_session):
    sim = simulator_session
    body = {"prompt": "waves on a beach --ar 16:9", "image": png_base64(), "endImage": png_base64((0, 90, 0)),
            "motion": "high", "videoType": "vid_1.1_i2v_720"}
    answer = submit(sim, "submit/video", body)
    assert answer["code"] == 1
    task = wait_done(sim, answer["result"])[0]
    assert task["action"] == "VIDEO" and task["status"] == "SUCCESS"
    assert task["properties"]["videoType"] == "vid_1.1_i2v_720" and task["properties"]["batchSize"] == 4
    assert task["properties"]["finalPrompt"].startswith(f"{sim.base_url}/mj/attachments/")

    urls = [v["url"] for v in task["videoUrls"]]
    assert len(urls) == 4 and task["videoUrl"] == urls[0]
    clips = [get_video(u) for u in urls]
    for clip in clips:
        assert (clip["width"], clip["height"]) == (192, 112)  # 720p's long side, 16:9, multiples of 16
        assert clip["profile"] == 66 and len(clip["samples"]) == 12 and clip["seconds"] == pytest.approx(1.5)
    assert len({c["bytes"] for c in clips}) == 4  # four different clips, as Midjourney's batch
    # The cover is a real picture of the scene.
    assert get_image(sim, task["imageUrl"]).width > get_image(sim, task["imageUrl"]).height
    # The older single-clip address is clip 0.
    assert httpx.get(f"{sim.base_url}/mj/video/{task['id']}.mp4").content == clips[0]["bytes"]
    assert httpx.get(f"{sim.base_url}/mj/video/{task['id']}/4.mp4").status_code == 404
    assert sim.stats()["videos_served"] == 5


def test_video_loop_batch_size_and_extend(simulator_session):
    sim = simulator_session
    looped = wait_done(sim, submit(sim, "submit/video", {"prompt": "a spinning top", "loop": True, "batchSize": 1})["result"])[0]
    assert len(looped["videoUrls"]) == 1
    clip = get_video(looped["videoUrl"])
    assert (clip["width"], clip["height"]) == (128, 128)  # 480p, the default
    samples = clip["samples"]
    assert samples[1] == samples[11] and samples[2] == samples[10]  # forward, then back: it loops

    plain = get_video(wait_done(sim, submit(sim, "submit/video", {"prompt": "a spinning top"})["result"])[0]["videoUrl"])
    assert plain["samples"][1] != plain["samples"][11]

    extend = {"prompt": "further", "action": "extend", "taskId": looped["id"], "index": 0}
    extended = wait_done(sim, submit(sim, "submit/video", extend)["result"])[0]
    assert extended["status"] == "SUCCESS" and extended["properties"]["parentId"] == looped["id"]
    assert len(extended["videoUrls"]) == 4
    assert get_video(extended["videoUrl"])["bytes"] != clip["bytes"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "prompt"),
        ({"prompt": "x", "videoType": "vid_9_8k"}, "videoType"),
        ({"prompt": "x", "batchSize": 3}, "batchSize"),
        ({"prompt": "x", "loop": "yes"}, "loop"),
        ({"prompt": "x", "image": "%%%"}, "image"),
        ({"prompt": "x", "action": "extend"}, "taskId"),
        ({"prompt": "x", "action": "shrink", "taskId": "1"}, "action"),
        ({"prompt": "x", "action": "extend", "taskId": "nope", "index": 0}, "nope"),
    ],
)
def test_bad_video_requests(simulator_session, body, needle):
    answer = submit(simulator_session, "submit/video", body)
    assert answer["code"] in (3, 4) and answer["result"] is None
    assert needle.lower() in answer["description"].lower()


def test_extend_needs_a_finished_video_and_a_clip_it_has(simulator_session):
    sim = simulator_session
    grid = imagine(sim)
    answer = submit(sim, "submit/video", {"prompt": "x", "action": "extend", "taskId": grid["id"], "index": 0})
    assert answer["code"] == 4 and "not a finished video" in answer["description"]
    one = wait_done(sim, submit(sim, "submit/video", {"prompt": "y", "batchSize": 1})["result"])[0]
    answer = submit(sim, "submit/video", {"prompt": "x", "action": "extend", "taskId": one["id"], "index": 1})
    assert answer["code"] == 4 and "index" in answer["description"]


# ---- edits, retexture, shorten, video-swap ---------------------------------------------------


@pytest.mark.parametrize(("route", "action"), [("submit/edits", "EDIT"), ("submit/retexture", "RETEXTURE")])
def test_edits_and_retexture_finish_with_a_grid(simulator_session, route, action):
    sim = simulator_session
    size = sim.config()["image_size"]
    for image in (png_base64(), f"data:image/png;base64,{png_base64()}", "https://example.com/cat.png"):
        body = {"prompt": "make it blue", "image": image, "maskBase64": png_base64((0, 0, 0))}
        task = wait_done(sim, submit(sim, route, body)["result"])[0]
        assert task["action"] == action and task["status"] == "SUCCESS"
        assert task["prompt"] == "make it blue" and task["properties"]["finalPrompt"].endswith(" make it blue")
        assert get_image(sim, task["imageUrl"]).size == (2 * size, 2 * size)
        assert len(task["buttons"]) == 9
    assert "https://example.com/cat.png make it blue" == task["properties"]["finalPrompt"]

    missing = submit(sim, route, {"prompt": "no picture"})
    assert missing["code"] == 4 and "image" in missing["description"]
    bad_mask = submit(sim, route, {"prompt": "p", "image": png_base64(), "maskBase64": "!!"})
    assert bad_mask["code"] == 4 and "maskBase64" in bad_mask["description"]
    assert submit(sim, route, {"image": png_base64()})["code"] == 4


def test_shorten_answers_five_prompts_in_description(simulator_session):
    sim = simulator_session
    prompt = "a very detailed cinematic photo of an old red fox sleeping in fresh snow at dawn --ar 3:2"
    task = wait_done(sim, submit(sim, "submit/shorten", {"prompt": prompt})["result"])[0]
    assert task["prompt"] == prompt
    options = task["description"].split("\n\n")
    assert [o[:3] for o in options] == ["1️⃣", "2️⃣", "3️⃣", "4️⃣", "5️⃣"]
    assert all(o.endswith("--ar 3:2") for o in options)
    lengths = [len(o) for o in options]
    assert lengths == sorted(lengths, reverse=True) and lengths[-1] < len(prompt)


def test_video_swap_takes_a_form_not_json(simulator_session):
    sim = simulator_session
    face, target = png_base64(), b"\x00\x00\x00\x18ftypmp42 any video bytes"
    resp = sim.http.post(
        "/mj/insight-face/video-swap",
        data={"sourceBase64": face, "state": "s1"},
        files={"targetFile": ("clip.mp4", target, "video/mp4")},
        headers=sim.headers,
    )
    answer = resp.json()
    assert resp.status_code == 200 and answer["code"] == 1, answer
    task = wait_done(sim, answer["result"])[0]
    assert (task["action"], task["botType"], task["state"]) == ("SWAP_VIDEO_FACE", "INSIGHT_FACE", "s1")
    # midjourney-proxy puts the swapped video's URL in imageUrl; videoUrl(s) carry it as well.
    assert task["imageUrl"] == task["videoUrl"] == task["videoUrls"][0]["url"]
    assert len(task["videoUrls"]) == 1 and len(get_video(task["videoUrl"])["samples"]) == 12
    logged = [r for r in sim.requests() if r["path"] == "/mj/insight-face/video-swap"][0]["json"]
    assert logged["targetFile"] == {"filename": "clip.mp4", "contentType": "video/mp4", "bytes": len(target)}

    by_url = sim.http.post("/mj/insight-face/video-swap", headers=sim.headers,
                           data={"sourceUrl": "https://example.com/face.png", "targetUrl": "https://example.com/clip.mp4"})
    assert wait_done(sim, by_url.json()["result"])[0]["status"] == "SUCCESS"
    # The fork binds this route from a form: JSON is an unsupported media type there.
    as_json = sim.http.post("/mj/insight-face/video-swap", headers=sim.headers,
                            json={"sourceUrl": "https://example.com/face.png", "targetUrl": "https://example.com/clip.mp4"})
    assert as_json.status_code == 415


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"targetUrl": "https://example.com/v.mp4"}, "sourceBase64"),
        ({"sourceBase64": png_base64()}, "targetFile"),
        ({"sourceBase64": png_base64(), "targetUrl": "file:///etc/passwd"}, "targetUrl"),
        ({"sourceBase64": "%%%", "targetUrl": "https://example.com/v.mp4"}, "base64"),
    ],
)
def test_bad_video_swaps(simulator_session, body, needle):
    sim = simulator_session
    answer = sim.http.post("/mj/insight-face/video-swap", data=body, headers=sim.headers).json()
    assert answer["code"] == 4 and needle.lower() in answer["description"].lower()


def test_empty_target_file_is_refused(simulator_session):
    sim = simulator_session
    resp = sim.http.post("/mj/insight-face/video-swap", data={"sourceBase64": png_base64()},
                         files={"targetFile": ("clip.mp4", b"", "video/mp4")}, headers=sim.headers)
    assert resp.json()["code"] == 4 and "targetFile" in resp.json()["description"]


def test_first_frame_upload_is_served_back(simulator_session):
    sim = simulator_session
    image = png_base64((1, 2, 3))
    task = wait_done(sim, submit(sim, "submit/video", {"prompt": "p", "image": image})["result"])[0]
    attachment = task["properties"]["finalPrompt"].split()[0]
    assert httpx.get(attachment).content == base64.b64decode(image)
    assert Image.open(io.BytesIO(httpx.get(attachment).content)).size == (32, 32)
