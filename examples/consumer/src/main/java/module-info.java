module example.consumer {
    requires dev.dsk4j;
}
