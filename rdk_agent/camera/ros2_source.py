"""The ``ros2:`` camera: depth and image topics of a ROS 2 stereo node (TogetheROS's ``hobot_stereonet``).

``Ros2Camera(depth_topic=DEPTH_TOPIC, image_topic=IMAGE_TOPIC, timeout_s=2.0, node_name="rdk_agent_camera")``
subscribes to both topics with sensor-data QoS on its own rclpy context, spinning in a daemon thread. Each
``read()`` returns the newest depth/image pair with equal header stamps as a Frame: BGR image, uint16 depth in
mm (0 = invalid), at the depth's size. ``rclpy`` is imported in the constructor only: it exists on the board
once TogetheROS is sourced (``source /opt/tros/humble/setup.bash``). Only the subscription is untested here;
pairing and decoding are :class:`rdk_agent.camera.ros_messages.PairedFrames`, which the tests run.
"""

from __future__ import annotations

import threading

from rdk_agent.camera.base import CameraError, CameraSource, Frame
from rdk_agent.camera.ros_messages import PairedFrames

DEPTH_TOPIC = "/StereoNetNode/stereonet_depth"
IMAGE_TOPIC = "/StereoNetNode/rectify_left_image"
MISSING_ROS = (
    "the ros2 camera needs ROS 2's rclpy and sensor_msgs: on the RDK X5 install TogetheROS (tros) and "
    "`source /opt/tros/humble/setup.bash` before starting the agent; without ROS use 'stereo:rdk'"
)


class Ros2Camera(CameraSource):
    """Depth + rectified image from two ROS 2 topics, paired by exact header stamp."""

    def __init__(
        self,
        depth_topic: str = DEPTH_TOPIC,
        image_topic: str = IMAGE_TOPIC,
        timeout_s: float = 2.0,
        node_name: str = "rdk_agent_camera",
    ) -> None:
        try:
            import rclpy  # type: ignore[import-not-found]
            from rclpy.context import Context  # type: ignore[import-not-found]
            from rclpy.executors import SingleThreadedExecutor  # type: ignore[import-not-found]
            from rclpy.qos import qos_profile_sensor_data  # type: ignore[import-not-found]
            from sensor_msgs.msg import Image  # type: ignore[import-not-found]
        except ImportError:
            raise CameraError(MISSING_ROS) from None
        self.topics = {"depth": depth_topic, "image": image_topic}
        self._frames = PairedFrames(timeout_s)
        self._closed = False
        self._context = Context()
        rclpy.init(context=self._context)
        self._node = rclpy.create_node(node_name, context=self._context)
        for kind, topic in self.topics.items():
            self._node.create_subscription(
                Image, topic, lambda msg, kind=kind: self._frames.offer(kind, msg), qos_profile_sensor_data
            )
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._executor.spin, name="ros2-camera", daemon=True)
        self._thread.start()

    def read(self) -> Frame:
        """The newest stamp-paired frame; CameraError after ``timeout_s`` without one."""
        if self._closed:
            raise CameraError("the ros2 camera is closed")
        frame = self._frames.read(f"{self.topics['depth']} and {self.topics['image']}")
        frame.meta["source"] = "ros2"
        return frame

    def status(self) -> dict:
        """Topics, message counters, the newest pair's age."""
        state = self._frames.status()
        age = state["last_pair_age_s"]
        ok = not self._closed and age is not None and age <= self._frames.timeout_s
        return {"kind": "ros2", "ok": ok, "has_depth": True, "topics": dict(self.topics), **state}

    def close(self) -> None:
        """Stop spinning and shut the node's context down."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown()
        self._node.destroy_node()
        self._context.try_shutdown()
        self._thread.join(timeout=2)
