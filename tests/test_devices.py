import pytest

from alexnet_tf1 import devices


def test_two_ids_put_one_tower_on_each_gpu():
    assert devices.resolve('0,1', n_visible=2).towers == ('/gpu:0', '/gpu:1')


def test_one_id_puts_both_towers_on_that_gpu():
    assert devices.resolve('0', n_visible=1).towers == ('/gpu:0', '/gpu:0')


def test_cpu_uses_two_logical_cpus():
    p = devices.resolve('cpu')
    assert p.towers == ('/cpu:0', '/cpu:1')
    assert p.session_config().device_count['CPU'] == 2


@pytest.mark.parametrize('n, want', [(0, ('/cpu:0', '/cpu:1')), (1, ('/gpu:0', '/gpu:0')),
                                     (2, ('/gpu:0', '/gpu:1')), (4, ('/gpu:0', '/gpu:1'))])
def test_auto_takes_two_gpus_else_one_else_cpu(n, want):
    assert devices.resolve('auto', n_visible=n).towers == want


def test_missing_gpu_is_a_one_line_error_suggesting_cpu():
    with pytest.raises(devices.DeviceError) as e:
        devices.resolve('0,1', n_visible=1)
    msg = str(e.value)
    assert '\n' not in msg and 'GPU 1' in msg and '--gpus cpu' in msg


@pytest.mark.parametrize('bad', ['x', '0,a', '-1', ''])
def test_malformed_value_is_an_error(bad):
    with pytest.raises(devices.DeviceError):
        devices.resolve(bad, n_visible=2)
