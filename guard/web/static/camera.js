// The camera path of the consent page: take one frame and put it into the same file field as
// an upload, so the server sees one kind of request. Nothing leaves the page until the person
// presses "Yes, I agree"; the camera stops as soon as the frame is taken.
"use strict";

(function () {
  const box = document.getElementById("camera");
  const input = document.getElementById("photo");
  if (!box || !input || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    return; // no camera API: the upload field alone works
  }
  const start = document.getElementById("camera-start");
  const take = document.getElementById("camera-take");
  const view = document.getElementById("camera-view");
  const shot = document.getElementById("camera-shot");
  const canvas = document.getElementById("camera-canvas");
  const status = document.getElementById("camera-status");
  let stream = null;

  function say(text) {
    status.textContent = text;
  }

  function stop() {
    if (stream) {
      stream.getTracks().forEach((track) => track.stop());
      stream = null;
    }
    view.srcObject = null;
    view.hidden = true;
    take.hidden = true;
  }

  start.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 } },
      });
    } catch (error) {
      say("The camera could not be started. You can upload a photo instead.");
      return;
    }
    view.srcObject = stream;
    view.hidden = false;
    await view.play();
    take.hidden = false;
    take.focus();
    say("The camera is on. Look at it, then press Take the photo.");
  });

  take.addEventListener("click", () => {
    const width = view.videoWidth;
    const height = view.videoHeight;
    if (!width || !height) {
      say("The camera has no picture yet. Try again in a moment.");
      return;
    }
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").drawImage(view, 0, 0, width, height);
    stop();
    canvas.toBlob(
      (blob) => {
        if (!blob) {
          say("The photo could not be taken. You can upload a photo instead.");
          return;
        }
        const file = new File([blob], "camera.jpg", { type: "image/jpeg" });
        const files = new DataTransfer();
        files.items.add(file);
        input.files = files.files;
        if (shot.src) {
          URL.revokeObjectURL(shot.src);
        }
        shot.src = URL.createObjectURL(blob);
        shot.hidden = false;
        say("Photo taken. Press Yes, I agree to send it, or Start the camera to take another.");
        document.getElementById("accept").focus();
      },
      "image/jpeg",
      0.92
    );
  });

  box.hidden = false;
})();
