"""A procedural road-camera simulator with exact ground truth.

:class:`~simulators.camera.world.World` moves vehicles and pedestrians along a
two-way road with sidewalks and logs every counting-line crossing;
:class:`~simulators.camera.render.Renderer` draws its state as a BGR frame
(day, dusk or rain) together with per-object boxes and visibility. Frames are
served in-process (:class:`~simulators.camera.source.SimulatorReader`), as
MJPEG over HTTP, or as RTSP through VLC.
"""

from simulators.camera.lines import Line
from simulators.camera.world import CLASSES, Crossing, World, WorldConfig

__all__ = ["CLASSES", "Crossing", "Line", "World", "WorldConfig"]
