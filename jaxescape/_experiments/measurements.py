"""Points that measure something other than an escape time (sweep method "measure").

A measurement is a function named by import path in the point's `measurement` component; its
options are the point's `measurement.option` keys. It is called as

    function(key=key, progress=label, **options) -> dict[str, scalar | array]

(`key` and `progress` only where its signature names them): `key` is the point's key
`fold_in(key(seed), index)`, so a measurement is reproducible like any point. The scalars
(numbers, booleans, strings, None) are stored in the point's JSON record under `measured` and
become columns of `load_results`; the arrays go to the point's `.npz` file (`load_escape_times`).
The reproductions use measurements for their non-escape parts (the stability diagram of Wu, Ma &
E, the stationary law of Mori et al.).
"""

import numbers

import numpy as np

from .components import options_of, resolve, signature_parameters


def run_measurement(point: dict, key, progress) -> tuple[dict, dict]:
    """Calls the point's measurement; returns its scalars and its arrays (as NumPy arrays).

    **Raises:**

    - `TypeError`: naming an entry of the returned dict that is neither a scalar nor an array.
    """
    name = point["measurement"]
    function = resolve("measurement", name)
    parameters = signature_parameters(function)
    arguments = {option: np.asarray(value, np.float64) if isinstance(value, tuple) else value
                 for option, value in options_of(point, "measurement").items()}
    if "key" in parameters:
        arguments["key"] = key
    if "progress" in parameters:
        arguments["progress"] = progress
    values = function(**arguments)
    if not isinstance(values, dict):
        raise TypeError(f"measurement {name!r} must return a dict of scalars and arrays, got "
                        f"{type(values).__name__}")
    scalars, arrays = {}, {}
    for entry, value in values.items():
        if value is None or isinstance(value, bool | str | numbers.Number) or (
                np.ndim(value) == 0 and np.asarray(value).dtype.kind in "biuf"):
            scalars[entry] = value if value is None or isinstance(value, bool | str) \
                else np.asarray(value).item()
        elif hasattr(value, "shape") or isinstance(value, list | tuple):
            arrays[entry] = np.asarray(value)
        else:
            raise TypeError(f"measurement {name!r} returned {entry!r} = "
                            f"{type(value).__name__}; allowed: numbers, booleans, strings, "
                            "None and arrays")
    return scalars, arrays
