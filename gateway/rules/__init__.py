"""Local rules on the pole: triggers from analytics and sensors drive outputs in real time.

:class:`~gateway.rules.engine.RulesEngine` evaluates the ``[[rules]]`` of the config
(:mod:`gateway.config.rules`); each action is an output with its own worker thread
(:mod:`gateway.rules.output`) writing through an actuator from the explicit registry
(:mod:`gateway.rules.actuators.registry`): Modbus coils and registers, firmware-bridge
board outputs, local MQTT topics, webhooks and GPIO lines. See ``docs/rules.md``.
"""
