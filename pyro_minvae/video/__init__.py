"""Real video: faces and mouths found in the frames, audio read from and written back into containers.

- :mod:`.container`: probe, frames, audio track, re-mux a new audio track with the video stream copied;
- :mod:`.faces`: the :class:`FaceDetector` contract and ``FACE_DETECTORS`` (dlib HOG + 68-point lip landmarks);
- :mod:`.mouth`: mouth boxes from faces, smoothed over time, and the crop;
- :mod:`.kind`: already-cropped mouth video or face video (``--crop auto|face|none``);
- :mod:`.track`: a video file -> :class:`MouthTrack` (ROIs + face-found mask);
- :mod:`.sheet`: ``--save-lips``: the ROIs as ``.npy`` and a contact-sheet PNG;
- :mod:`.reader`: :func:`read_video` -> (waveform, sample rate, visual dict, details);
- :mod:`.enhance_io`: the reader/writer plugged into :mod:`pyro_minvae.enhancement` for video suffixes.
"""

from .container import VIDEO_SUFFIXES, VideoInfo, iter_frames, mux_audio, probe, read_audio_track
from .faces import FACE_DETECTORS, FaceDetector, FaceFinding, default_detector
from .kind import resolve_crop
from .mouth import MouthConfig
from .reader import VideoDetails, VideoOptions, VideoRead, read_video
from .sheet import contact_sheet, save_lips
from .track import MouthTrack, NoFaceError, track_mouth

__all__ = [
    "VIDEO_SUFFIXES",
    "VideoInfo",
    "iter_frames",
    "mux_audio",
    "probe",
    "read_audio_track",
    "FACE_DETECTORS",
    "FaceDetector",
    "FaceFinding",
    "default_detector",
    "resolve_crop",
    "MouthConfig",
    "VideoDetails",
    "VideoOptions",
    "VideoRead",
    "read_video",
    "contact_sheet",
    "save_lips",
    "MouthTrack",
    "NoFaceError",
    "track_mouth",
]
