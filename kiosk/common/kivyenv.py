"""Kivy's settings for both apps' windows, applied before Kivy is first imported: no
argument parsing, logs through Python logging, a real display (never Kivy's silent
offscreen fallback), the kiosk window, and the Chinese font as every label's default."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def configure_kivy(kiosk: bool, size: tuple[int, int] | None = None, on_top: bool = False) -> None:
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    # SDL would turn SIGTERM into a window-close request, which a kiosk refuses: let the
    # apps' own handlers stop them in order instead.
    os.environ.setdefault("SDL_NO_SIGNAL_HANDLERS", "1")
    if sys.platform.startswith("linux") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "x11")
    # The system input method (IBus or Fcitx on Linux, picked by SDL from SDL_IM_MODULE or
    # XMODIFIERS; the Windows IME) types Chinese into the focused field: SDL's text input
    # is on while a field has the focus, and the composition arrives as text-editing
    # events that Kivy's TextInput shows inline. SDL hides a Windows IME's candidate list
    # unless told to show it: nothing here draws one.
    os.environ.setdefault("SDL_IME_SHOW_UI", "1")
    from kivy.config import Config

    Config.set("kivy", "exit_on_escape", "0")
    # A hardware keyboard and the input method type into the focused field; Kivy's own
    # virtual keyboard never shows (the apps draw their own keypads).
    Config.set("kivy", "keyboard_mode", "system")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    # No multisampling (Kivy asks for 2x): the screens are rectangles and text, and with
    # software GL the samples doubled the cost of every frame, a 1920x1080 monitor of 150
    # seats 0.24-0.30 s instead of 0.11-0.13 s (bench/README.md).
    Config.set("graphics", "multisamples", "0")
    if size:
        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
    if kiosk:
        Config.set("graphics", "fullscreen", "auto")
        Config.set("graphics", "borderless", "1")
        if on_top:
            Config.set("graphics", "always_on_top", "1")


def use_chinese_font() -> None:
    """Every label's default font ("Roboto") becomes the system's Chinese font."""
    from kivy.core.text import LabelBase

    from kiosk.common.fonts import chinese_font

    LabelBase.register("Roboto", str(chinese_font()))


def swap_without_gil() -> bool:
    """Kivy swaps the window's buffers (SDL_GL_SwapWindow) holding Python's lock. With
    software rendering a swap of a 1920x1080 frame takes 0.05-0.5 s (bench/ui_grid.py),
    in which no other thread ran: the engine's worker (the room service) stalled with
    every frame. The same SDL call made through ctypes lets go of the lock while the
    driver draws. Linux only (the SDL library Kivy loaded, read from /proc/self/maps);
    False where it is not done."""
    import ctypes
    import re

    from kivy.core.window import Window

    maps = Path("/proc/self/maps")
    if not maps.exists():
        return False
    found = re.search(r"(/\S*/libSDL2-[^/\s]*\.so[^/\s]*)$", maps.read_text(), re.MULTILINE)
    if found is None:
        return False
    try:
        sdl = ctypes.CDLL(found.group(1))  # already loaded: the same library and state as Kivy's
        sdl.SDL_GL_GetCurrentWindow.restype = ctypes.c_void_p
        sdl.SDL_GL_SwapWindow.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):  # not loadable, or not the SDL we know: Kivy's swap stays
        return False
    if not sdl.SDL_GL_GetCurrentWindow():
        return False

    def flip() -> None:  # on the UI thread as before, only without holding the lock
        sdl.SDL_GL_SwapWindow(sdl.SDL_GL_GetCurrentWindow())

    Window.flip = flip
    return True
