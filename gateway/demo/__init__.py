"""``gateway demo``: the whole gateway on simulated cameras and sensors, with no services.

:mod:`~gateway.demo.broker` embeds an MQTT broker, :mod:`~gateway.demo.scenario`
builds the demo's settings and ground truth, :mod:`~gateway.demo.session` runs it all,
:mod:`~gateway.demo.view` draws the live terminal view and
:mod:`~gateway.demo.accuracy` measures counts against the simulator's ground truth.
"""
